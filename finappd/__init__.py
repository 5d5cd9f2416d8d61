"""finappd: a market-data ingestion daemon, and an async API to run its flows from an app.

::

    summary = await finappd.run_flow("/etc/finappd/finappd.toml", "eod")

``run_flow`` opens a :class:`Runtime` (store, writer thread, HTTP session, providers),
runs the flow once and closes everything: the same politeness (concurrency cap,
rate limits, 429 pauses, retries) and the same ``runs``/``bars`` rows as a scheduled
run. Limits are per Runtime: to run several flows at once under one set of limits,
open one ``Runtime`` and call :meth:`Runtime.run_flow` for each. Names other than
``__version__`` are imported lazily, so ``import finappd`` stays cheap.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finappd.config import Settings
    from finappd.flows import RunSummary
    from finappd.runtime import Runtime
    from finappd.validate import load_checked as load_settings

__all__ = ["RunSummary", "Runtime", "Settings", "__version__", "load_settings", "run_flow"]

__version__ = "0.1.0"

#: Public name → (module, name there); ``load_settings`` also checks the provider facts.
_LAZY = {
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
    from pathlib import Path

    from finappd.config import Settings
    from finappd.runtime import Runtime
    from finappd.validate import load_checked

    settings = config if isinstance(config, Settings) else load_checked(Path(config))
    settings.flow(flow)  # unknown flow: ConfigError before the store opens
    async with Runtime(settings) as runtime:
        return await runtime.run_flow(flow, trigger)
