"""Server-sent events of one run: ``progress`` events while it lasts, one ``end``, then close.

Each event's data is a JSON :class:`~finappd.flows.run.RunProgress` (``run_id``, ``flow``,
``status``, ``tickers_total``, ``tickers_ok``, ``tickers_failed``, ``rows_written``,
``failures`` by kind, ``final``). A run that is not in progress in this daemon is
answered from its row: one ``end`` event if it is over, else one ``progress`` event
(another process runs it; poll ``GET /runs/{id}``). A comment line every
:data:`KEEPALIVE` seconds keeps idle proxies from closing the stream.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

from aiohttp import web

from finappd.flows.run import RunProgress
from finappd.store import RunRow

__all__ = ["KEEPALIVE", "frame", "from_row", "row_dict", "stream"]

#: Seconds between keep-alive comments on an idle stream.
KEEPALIVE = 15.0


def row_dict(row: RunRow) -> dict[str, Any]:
    """A ``runs`` row as JSON-able data (times as ISO-8601 text)."""
    data = asdict(row)
    for key in ("started_at", "finished_at"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    return data


def frame(event: str, data: dict[str, Any]) -> bytes:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


async def _open(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: pass each event on at once
        }
    )
    await response.prepare(request)
    return response


async def stream(
    request: web.Request, first: RunProgress, queue: asyncio.Queue[RunProgress]
) -> web.StreamResponse:
    """Send ``first``, then each event from ``queue`` until the ``end`` one."""
    response = await _open(request)
    await response.write(frame("progress", first.as_dict()))
    while True:
        try:
            async with asyncio.timeout(KEEPALIVE):
                event = await queue.get()
        except TimeoutError:
            await response.write(b": keep-alive\n\n")
            continue
        await response.write(frame("end" if event.final else "progress", event.as_dict()))
        if event.final:
            break
    await response.write_eof()
    return response


async def from_row(
    request: web.Request, row: RunRow, failures: dict[str, int]
) -> web.StreamResponse:
    """One event from the run's row: ``end`` if it is over, else ``progress``."""
    response = await _open(request)
    over = row.status != "running"
    data = row_dict(row) | {"run_id": row.id, "failures": failures, "final": over}
    await response.write(frame("end" if over else "progress", data))
    await response.write_eof()
    return response
