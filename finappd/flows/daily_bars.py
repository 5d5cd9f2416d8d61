"""The ``daily_bars`` flow kind: each ticker's daily OHLCV over a trailing lookback window.

Re-fetching a trailing window on every run (``lookback_days``) lets later fetches
fill gaps and pick up revised bars (PROVIDERS.md §10.8); the upsert keeps one row
per (symbol, interval, day), the latest fetch winning.

A flow's providers form a chain (flows/chain.py). Rows carry the flow's ticker as
``symbol``, whatever the provider calls it, and the name of the provider that served them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from finappd.config import FlowSettings
from finappd.flows.actions import Actions, ActionsHook
from finappd.flows.chain import Chain
from finappd.flows.incremental import Incremental
from finappd.flows.run import Fetch, TickerResult
from finappd.providers import BaseProvider
from finappd.quality import screen
from finappd.records import Bar

__all__ = ["daily_bars_fetch", "lookback_range"]


def lookback_range(flow: FlowSettings, now: datetime) -> tuple[date, date]:
    """The inclusive date range to fetch: ``lookback_days`` back from today in the flow's tz."""
    today = now.astimezone(ZoneInfo(flow.timezone)).date()
    return today - timedelta(days=flow.lookback_days), today


def _as_ticker(bars: list[Bar], symbol: str) -> list[Bar]:
    """``bars`` stored under the flow's ``symbol``, whatever the provider called it."""
    return [b if b.symbol == symbol else dataclasses.replace(b, symbol=symbol) for b in bars]


def daily_bars_fetch(
    providers: Sequence[BaseProvider],
    start: date,
    end: date,
    *,
    actions: ActionsHook | None = None,
    incremental: Incremental | None = None,
) -> Fetch:
    """A per-ticker fetch down the provider chain; failures become recorded results.

    With ``actions``, the dividends/splits a provider's bar response carries are handed to
    it (flows/actions.py) and written with the bars: no extra request.

    With ``incremental``, each ticker's range comes from its stored bars and the
    calendar instead (``start``/``end`` unused); a ticker with nothing new is not
    requested at all (flows/incremental.py)."""
    chain = Chain(providers)

    async def fetch(symbol: str) -> TickerResult:
        first_day, last_day = start, end
        if incremental is not None:
            wanted = incremental.range_for(symbol)
            if wanted is None:
                return TickerResult(symbol, chain.primary.name)
            first_day, last_day = wanted

        async def ask(provider: BaseProvider) -> tuple[list[Bar], Actions | None]:
            bars, found = await provider.bars_and_actions(symbol, first_day, last_day)
            now = incremental.now if incremental is not None else None
            bars = screen(_as_ticker(bars, symbol), provider.name, now)
            if incremental is not None:
                bars = incremental.finish(symbol, bars)
            return bars, found

        served = await chain.ask(symbol, ask)
        if isinstance(served, TickerResult):
            return served
        provider, (bars, found) = served
        write = None
        if actions is not None and found is not None:
            write = actions(symbol, provider.name, first_day, found)
        return TickerResult(
            symbol, provider.name, bars=bars, adjustment=provider.spec.adjustment, write=write
        )

    return fetch
