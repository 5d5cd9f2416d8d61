"""The ``daily_bars`` flow kind: each ticker's daily OHLCV over a trailing lookback window.

Re-fetching a trailing window on every run (``lookback_days``) lets later fetches
fill gaps and pick up revised bars (PROVIDERS.md §10.8); the upsert keeps one row
per (symbol, interval, day), the latest fetch winning.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from finappd.config import FlowSettings
from finappd.errors import ProviderError
from finappd.flows.run import Fetch, TickerResult, provider_failure
from finappd.providers import BaseProvider
from finappd.quality import screen

__all__ = ["daily_bars_fetch", "lookback_range"]


def lookback_range(flow: FlowSettings, now: datetime) -> tuple[date, date]:
    """The inclusive date range to fetch: ``lookback_days`` back from today in the flow's tz."""
    today = now.astimezone(ZoneInfo(flow.timezone)).date()
    return today - timedelta(days=flow.lookback_days), today


def daily_bars_fetch(provider: BaseProvider, start: date, end: date) -> Fetch:
    """A per-ticker fetch that turns provider failures into recorded results."""

    async def fetch(symbol: str) -> TickerResult:
        try:
            bars = screen(await provider.daily_bars(symbol, start, end), provider.name)
        except ProviderError as exc:
            return provider_failure(symbol, provider.name, exc)
        return TickerResult(symbol, provider.name, bars=bars)

    return fetch
