"""The ``quotes`` flow kind: the latest price of each ticker, kept as a time series.

Each run asks the provider chain for one snapshot per ticker whose market is open
*now* (the ``is_open`` check is injected, by default :func:`in_session` on the trading
calendar; a closed market costs no request) and appends it to ``quotes`` keyed by (symbol, the
provider's quote time), so a snapshot repeated while the price is unchanged is one
row. Readers take the newest per symbol from the ``latest_quote`` view.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime

from finappd.calendar import Exchange, exchange_for, session_bounds
from finappd.config import FlowSettings
from finappd.errors import ProviderError
from finappd.flows.run import Fetch, TickerResult
from finappd.providers import BaseProvider
from finappd.records import Quote
from finappd.store import Store
from finappd.store.market import write_quotes

__all__ = ["IsOpen", "flow_is_open", "in_session", "quotes_fetch"]

#: ``is_open(symbol, now)``: whether ``symbol``'s market is in session at ``now``.
IsOpen = Callable[[str, datetime], bool]


def in_session(symbol: str, now: datetime, exchange: Exchange | None = None) -> bool:
    """Whether ``symbol``'s exchange (default: by its suffix) is in its regular session at
    ``now``.

    Holidays and early closes come from :mod:`finappd.calendar`; crypto trades 24/7, FX on
    weekdays.
    """
    where = exchange or exchange_for(symbol)
    bounds = session_bounds(where, now.astimezone(where.tz).date())
    return bounds is not None and bounds[0] <= now < bounds[1]


def flow_is_open(flow: FlowSettings) -> IsOpen:
    """:func:`in_session` on the exchange ``flow`` gives each ticker (its ``exchange`` key)."""
    return lambda symbol, now: in_session(symbol, now, flow.exchange_of(symbol))


def _writer(quote: Quote, provider: str) -> Callable[[Store, datetime], int]:
    def write(store: Store, now: datetime) -> int:
        return write_quotes(store, [quote], provider=provider, fetched_at=now)

    return write


def quotes_fetch(providers: Sequence[BaseProvider], now: datetime, is_open: IsOpen) -> Fetch:
    """A per-ticker snapshot down the provider chain; a closed market is skipped, no request."""
    if not providers:
        raise ValueError("a quotes fetch needs at least one provider")

    async def fetch(symbol: str) -> TickerResult:
        if not is_open(symbol, now):
            return TickerResult(symbol, providers[0].name)
        failures: list[ProviderError] = []
        for provider in providers:
            try:
                quote = await provider.quote(symbol)
            except ProviderError as exc:
                failures.append(exc)
                continue
            if quote.symbol != symbol:
                quote = dataclasses.replace(quote, symbol=symbol)
            return TickerResult(symbol, provider.name, write=_writer(quote, provider.name))
        first = failures[0]
        message = "; then ".join(str(f) for f in failures)
        return TickerResult(symbol, first.provider, error_kind=first.kind, error=message)

    return fetch
