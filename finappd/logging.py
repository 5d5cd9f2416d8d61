"""structlog setup: one JSON object per line on stdout, stdlib loggers rendered the same way.

Every line carries an ISO-8601 UTC ``timestamp``, ``level`` and ``event``, plus
whatever context is bound with :func:`structlog.contextvars.bind_contextvars`
(``run_id``, ``flow``, ``step``, ``symbol``, ``provider``). A console renderer is
used only when stdout is a TTY and the format is ``auto``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["configure_logging"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
#: Library loggers that are chatty at INFO and add nothing to a daemon's log.
_QUIET = {"apscheduler.scheduler": logging.WARNING, "apscheduler.executors": logging.WARNING}


def _rename_logger(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Drop the stdlib logger name for our own lines; keep it for library lines."""
    name = event_dict.pop("logger", None)
    if name and not str(name).startswith("finappd"):
        event_dict["logger"] = name
    return event_dict


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib logging to ``stream`` (stdout) as JSON lines or console."""
    out = stream or sys.stdout
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _rename_logger,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if use_console
        else structlog.processors.JSONRenderer(default=str)
    )
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if not use_console:
        final.append(structlog.processors.dict_tracebacks)
    final.append(renderer)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=final,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, _LEVELS[level]))
    logging.captureWarnings(True)
    processors: list[Any] = [
        structlog.stdlib.filter_by_level,
        *shared,
        structlog.processors.StackInfoRenderer(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
