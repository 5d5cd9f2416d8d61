"""Run a finappd flow from your own asyncio program, e.g. a Reflex background task.

    python examples/embed.py /etc/finappd/finappd.toml eod

``finappd.run_flow`` opens the store, the HTTP session and the providers, runs the
flow once with the same limits, retries and 429 pauses as the daemon, records the
run in ``runs``, and closes everything again. In a Reflex app::

    class State(rx.State):
        @rx.event(background=True)
        async def refresh_prices(self) -> None:
            summary = await finappd.run_flow("finappd.toml", "eod")
            async with self:
                self.last_refresh = f"{summary.status}: {summary.tickers_ok} tickers"
"""

from __future__ import annotations

import asyncio
import sys

import finappd


async def main(config: str, flow: str) -> int:
    """Run ``flow`` once and print its summary; 0 when data landed, 1 otherwise."""
    summary = await finappd.run_flow(config, flow)
    print(
        f"{summary.flow}: {summary.status}, {summary.tickers_ok}/{summary.tickers_total} "
        f"tickers, {summary.rows_written} rows in {summary.duration_s:.1f}s (run {summary.run_id})"
    )
    return 0 if summary.status in ("ok", "partial") else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} CONFIG FLOW")
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
