"""structlog setup: one JSON object per line on stdout, stdlib loggers rendered the same way.

Every line carries an ISO-8601 UTC ``timestamp``, ``level`` and ``event``, plus
whatever context is bound with :func:`structlog.contextvars.bind_contextvars`
(``run_id``, ``flow``, ``step``, ``symbol``, ``provider``). A console renderer is
used only when stdout is a TTY and the format is ``auto``.

When stdout is the journal (``$JOURNAL_STREAM`` names its device and inode, as
systemd sets it), each line starts with a syslog priority prefix (``<3>`` error,
``<4>`` warning, ``<6>`` info, ``<7>`` debug): journald strips it and files the
line at that priority, so ``journalctl -p warning`` works and ``journalctl -o cat``
still shows pure JSON.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from finappd.systemd import is_journal_stream

__all__ = ["JournalPrefixFormatter", "configure_logging", "syslog_priority"]

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


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a stdlib level: 2 critical, 3 error, 4 warning, 6 info, 7 debug."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


class JournalPrefixFormatter(logging.Formatter):
    """Prefix what ``inner`` renders with ``<N>``, the record's syslog priority, for journald."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        """``<N>`` + the inner formatter's line."""
        return f"<{syslog_priority(record.levelno)}>{self.inner.format(record)}"


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib logging to ``stream`` (stdout) as JSON lines or console.

    Lines get a syslog priority prefix when ``stream`` is the journal (``$JOURNAL_STREAM``).
    """
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
    handler.setFormatter(JournalPrefixFormatter(formatter) if is_journal_stream(out) else formatter)
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
