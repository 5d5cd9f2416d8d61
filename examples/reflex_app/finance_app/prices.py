"""What the app asks of finappd: start a refresh, follow its progress, read the latest closes.

Nothing here imports Reflex: it is plain asyncio and sqlite3, usable from any app.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import finappd
from finappd.api.client import ApiClient, DaemonUnreachable


def config_path() -> Path:
    """The daemon's config file ($FINAPPD_CONFIG): its [api] says where the daemon listens."""
    return Path(os.environ.get("FINAPPD_CONFIG", "finappd.toml"))


def flow_name() -> str:
    """The flow the button refreshes ($FINANCE_APP_FLOW, default ``eod``)."""
    return os.environ.get("FINANCE_APP_FLOW", "eod")


async def refresh() -> AsyncIterator[dict[str, Any]]:
    """Start the flow and yield its progress events (the last one ``final``), each with
    ``via``: ``daemon`` when the running daemon's API took the run (its limits apply), else
    ``app`` (the flow runs in this process, the same way)."""
    settings = finappd.load_settings(config_path())
    flow = flow_name()
    try:
        async with ApiClient(settings.api) as api:
            run_id = await api.trigger(flow)
            async for event in api.events(run_id):
                yield event | {"via": "daemon"}
            return
    except DaemonUnreachable:
        pass  # no daemon: run it here
    async for progress in finappd.stream_flow(settings, flow):
        yield progress.as_dict() | {"via": "app"}


def latest_closes(limit: int = 50) -> list[dict[str, str]]:
    """The newest close of each symbol, from the ``latest_close`` view, read-only."""
    path = finappd.load_settings(config_path()).store.resolved_path()
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute(
            "SELECT symbol, ts, close FROM latest_close ORDER BY symbol LIMIT ?", (limit,)
        ).fetchall()
    return [{"symbol": s, "date": ts, "close": f"{close:.2f}"} for s, ts, close in rows]
