"""The ``crypto`` flow kind: daily bars of coins (``BTC-USD``) on a 24/7 calendar of UTC days.

Crypto trades every day and has no exchange timezone: a bar's ``ts`` is the UTC date
(the providers' daily crypto closes cut days at 00:00 UTC), whatever timezone the flow's
schedule uses. The bars go into ``bars`` like any daily bar, through the same per-ticker
fetch and provider chain as ``daily_bars``.

"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from finappd.config import FlowSettings
from finappd.flows.daily_bars import daily_bars_fetch
from finappd.flows.run import Fetch
from finappd.providers import BaseProvider

__all__ = ["crypto_fetch", "utc_range"]


def utc_range(flow: FlowSettings, now: datetime) -> tuple[date, date]:
    """The UTC days to fetch: ``lookback_days`` back from today's UTC date, inclusive."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=flow.lookback_days), today


def crypto_fetch(flow: FlowSettings, providers: Sequence[BaseProvider], now: datetime) -> Fetch:
    """The per-coin daily-bar fetch over the flow's trailing UTC days."""
    start, end = utc_range(flow, now)
    return daily_bars_fetch(providers, start, end)
