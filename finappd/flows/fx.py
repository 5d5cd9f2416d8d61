"""The ``fx`` flow kind: daily reference rates (e.g. the ECB's) into ``fx_rates``.

A ticker names a pair (:func:`~finappd.pairs.fx_pair`: ``EUR/USD``, ``EURUSD=X``,
``JPY=X`` for USD/JPY, or bare ``EURUSD``); each run fetches the flow's trailing
``lookback_days`` of that pair's rates (published days only: no weekends or holidays),
so a late publication is picked up by the next run. Rows are ``rate`` units of quote per
one base on the publisher's date.

"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime

from finappd.flows.chain import Chain
from finappd.flows.run import Fetch, TickerResult
from finappd.pairs import fx_pair
from finappd.providers import BaseProvider
from finappd.records import FxRate
from finappd.store import Store
from finappd.store.market import write_fx_rates

__all__ = ["fx_fetch"]


def _writer(rates: list[FxRate], provider: str) -> Callable[[Store, datetime], int]:
    def write(store: Store, now: datetime) -> int:
        return write_fx_rates(store, rates, provider=provider, fetched_at=now)

    return write


def fx_fetch(providers: Sequence[BaseProvider], start: date, end: date) -> Fetch:
    """A per-pair fetch of the rates of ``start..end`` down the provider chain."""
    chain = Chain(providers)

    async def fetch(symbol: str) -> TickerResult:
        try:
            base, quote = fx_pair(symbol)
        except ValueError as exc:
            return TickerResult(symbol, chain.primary.name, error_kind="not_found", error=str(exc))

        async def ask(provider: BaseProvider) -> list[FxRate]:
            return await provider.fx_rates(base, [quote], start, end)

        served = await chain.ask(symbol, ask)
        if isinstance(served, TickerResult):
            return served
        provider, rates = served
        return TickerResult(symbol, provider.name, write=_writer(rates, provider.name))

    return fetch
