"""finappd: a market-data ingestion daemon, and an async API to run its flows from an app.

::

    summary = await finappd.run_flow("/etc/finappd/finappd.toml", "eod")

``run_flow`` opens a :class:`Runtime` (store, writer thread, HTTP session, providers),
runs the flow once and closes everything: the same politeness (concurrency cap,
rate limits, 429 pauses, retries) and the same ``runs``/``bars`` rows as a scheduled
run. ``stream_flow`` does the same and yields the run's :class:`RunProgress` events as
they come (the ones the daemon's ``GET /runs/{id}/events`` sends)::

    async for event in finappd.stream_flow("/etc/finappd/finappd.toml", "eod"):
        print(event.tickers_ok, "/", event.tickers_total, event.status)
 Limits are per Runtime: to run several flows at once under one set of limits,
open one ``Runtime`` and call :meth:`Runtime.run_flow` for each. Names other than
``__version__`` are imported lazily, so ``import finappd`` stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finappd.config import Settings
    from finappd.flows import RunSummary
    from finappd.flows.run import RunProgress
    from finappd.runtime import Runtime
    from finappd.validate import load_checked as load_settings

__all__ = [
    "RunProgress",
    "RunSummary",
    "Runtime",
    "Settings",
    "__version__",
    "load_settings",
    "run_flow",
    "stream_flow",
]

__version__ = "0.1.0"

#: Public name → (module, name there); ``load_settings`` also checks the provider facts.
_LAZY = {
    "RunProgress": ("finappd.flows.run", "RunProgress"),
    "RunSummary": ("finappd.flows", "RunSummary"),
    "Runtime": ("finappd.runtime", "Runtime"),
    "Settings": ("finappd.config", "Settings"),
    "load_settings": ("finappd.validate", "load_checked"),
}


def __getattr__(name: str) -> Any:
    """Import the public names on first use (the CLI must not pay for aiohttp and friends)."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'finappd' has no attribute {name!r}")


async def run_flow(
    config: Settings | str | os.PathLike[str], flow: str, *, trigger: str = "api"
) -> RunSummary:
    """Run the flow called ``flow`` once, now, and return its summary.

    ``config`` is a :class:`Settings` or the path of a TOML config file (``FINAPPD_*``
    environment overrides apply, as for the CLI). An invalid config or unknown flow
    raises :class:`~finappd.errors.ConfigError` before anything is opened; the run is
    recorded in the database with ``trigger`` (default ``api``). Cancelling the
    awaiting task cancels the run, which is recorded as ``cancelled``.
    """
    from finappd.runtime import Runtime

    settings = _settings(config, flow)
    async with Runtime(settings) as runtime:
        return await runtime.run_flow(flow, trigger)


async def stream_flow(
    config: Settings | str | os.PathLike[str], flow: str, *, trigger: str = "api"
) -> AsyncGenerator[RunProgress, None]:
    """Run the flow like :func:`run_flow`, yielding its progress events; the last is ``final``.

    Leaving the loop early (``break``, an exception, cancelling) cancels the run, which is
    recorded as ``cancelled``. A failure before the run's row exists (the store cannot
    be opened) is raised.
    """
    import asyncio

    from finappd.runtime import Runtime

    settings = _settings(config, flow)
    queue: asyncio.Queue[RunProgress | None] = asyncio.Queue()
    async with Runtime(settings) as runtime:
        task = asyncio.create_task(runtime.run_flow(flow, trigger, events=queue.put_nowait))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (event := await queue.get()) is not None:
                yield event
            await task  # raises what ended the run, if anything did
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})


def _settings(config: Settings | str | os.PathLike[str], flow: str) -> Settings:
    """``config`` as Settings (a path is loaded), checked to have ``flow``."""
    from pathlib import Path

    from finappd.config import Settings
    from finappd.validate import load_checked

    settings = config if isinstance(config, Settings) else load_checked(Path(config))
    settings.flow(flow)  # unknown flow: ConfigError before the store opens
    return settings
