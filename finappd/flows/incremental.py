"""Incremental daily bars: what each ticker still needs, decided from the store and the calendar.

A run asks a provider only for what can have changed: from the newest stored bar
minus ``revision_days`` trading days (PROVIDERS.md §10.8: providers revise and fill
recent days) up to the newest session that has opened. A ticker whose newest stored
bar is final and is already the newest session's is skipped without a request, so a
run on a weekend or holiday sends nothing. A ticker with no bars gets ``lookback_days``.

The bar of a session still open at ``now`` is stored ``provisional``, and every run
fetches it again until one after the session's close stores it final.
A stored final close that a re-fetch changes is logged ``bar.revised``.

Everything here is a pure function of the stored state, the calendar and ``now``;
the state comes from two queries per run (:func:`load_state`), not one per ticker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import structlog

from finappd.calendar import (
    Exchange,
    exchange_for,
    latest_session,
    session_bounds,
    shift_trading_days,
)
from finappd.config import FlowSettings
from finappd.instruments import stored_exchanges
from finappd.records import Bar, make_bar
from finappd.store import Store
from finappd.units import unit_of

__all__ = ["BarState", "Incremental", "load_state"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class BarState:
    """The stored daily bars a run plans from: newest per symbol, and recent closes."""

    #: symbol → (newest stored daily bar's date, whether it is provisional)
    last: Mapping[str, tuple[date, bool]]
    #: (symbol, date) → (close, provisional) for the bars inside the revision window
    closes: Mapping[tuple[str, date], tuple[float, bool]]
    #: symbol → the exchange its ``instruments`` row names (provider metadata or config)
    exchanges: Mapping[str, Exchange] = field(default_factory=dict)


def window_since(now: datetime, revision_days: int) -> date:
    """The oldest date whose closes are loaded for revision checks (calendar-day margin)."""
    return now.date() - timedelta(days=revision_days * 2 + 7)


def load_state(store: Store, symbols: Sequence[str], since: date) -> BarState:
    """The newest daily bar of each of ``symbols`` and their closes from ``since``; two queries.

    Runs on the writer thread like every store call.
    """
    wanted = set(symbols)
    with store._guard("load bar state") as conn:
        # Each symbol's newest daily bar, found through the primary key (both backends).
        rows = conn.execute(
            "SELECT b.symbol, b.ts, b.provisional FROM bars AS b JOIN ("
            "SELECT symbol, MAX(ts) AS ts FROM bars WHERE interval = '1d' GROUP BY symbol"
            ") AS m ON b.symbol = m.symbol AND b.interval = '1d' AND b.ts = m.ts"
        ).fetchall()
        last = {s: (date.fromisoformat(ts[:10]), bool(p)) for s, ts, p in rows if s in wanted}
        window = conn.execute(
            "SELECT symbol, ts, close, provisional FROM bars WHERE interval = '1d' AND ts >= ?",
            (since.isoformat(),),
        ).fetchall()
    closes = {
        (s, date.fromisoformat(ts[:10])): (c, bool(p)) for s, ts, c, p in window if s in wanted
    }
    return BarState(last, closes, stored_exchanges(store, symbols))


def _provisional(bar: Bar) -> Bar:
    """``bar`` marked provisional (field by field: ``dataclasses.replace`` costs ~10x more)."""
    return make_bar(
        bar.symbol,
        bar.ts,
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.adj_close,
        bar.volume,
        bar.interval,
        True,
        bar.currency,
        bar.info,
    )


class Incremental:
    """Per-ticker ranges and post-processing for one run as of ``now``."""

    def __init__(
        self,
        state: BarState,
        now: datetime,
        *,
        lookback_days: int,
        revision_days: int,
        exchange_of: Callable[[str], Exchange] = exchange_for,
    ) -> None:
        if now.utcoffset() is None:
            raise ValueError(f"naive datetime {now!r}: an incremental run needs a tz-aware now")
        self.state = state
        self.now = now
        self.lookback_days = lookback_days
        self.revision_days = revision_days
        self.exchange_of = exchange_of
        # (exchange, day) → whether that session has closed at ``now``: the same few days
        # for every ticker of a run, so each is looked up in the calendar once.
        self._closed_at: dict[tuple[Exchange, date], bool] = {}
        self._newest: dict[Exchange, date] = {}  # exchange → its latest session at ``now``

    @classmethod
    def for_flow(cls, flow: FlowSettings, state: BarState, now: datetime) -> Incremental:
        """The planner of a run of ``flow`` at ``now`` (shared by real and dry runs)."""
        return cls(
            state,
            now,
            lookback_days=flow.lookback_days,
            revision_days=flow.revision_days,
            exchange_of=lambda symbol: flow.exchange_of(symbol, state.exchanges.get(symbol)),
        )

    def range_for(self, symbol: str) -> tuple[date, date] | None:
        """The inclusive dates to request for ``symbol``, or ``None``: nothing can be new."""
        exchange = self.exchange_of(symbol)
        newest = self._newest.get(exchange)
        if newest is None:
            newest = self._newest[exchange] = latest_session(exchange, self.now)
        stored = self.state.last.get(symbol)
        if stored is None:
            return newest - timedelta(days=self.lookback_days), newest
        last, provisional = stored
        if last >= newest and not provisional:
            return None  # the newest session's final bar is stored: nothing can be new
        return shift_trading_days(exchange, min(last, newest), self.revision_days), newest

    def _closed(self, exchange: Exchange, day: date) -> bool:
        key = (exchange, day)
        closed = self._closed_at.get(key)
        if closed is None:
            bounds = session_bounds(exchange, day)
            closed = self._closed_at[key] = bounds is None or bounds[1] <= self.now
        return closed

    def finish(self, symbol: str, bars: list[Bar]) -> list[Bar]:
        """Mark bars of still-open sessions provisional; log stored final closes that changed."""
        exchange = self.exchange_of(symbol)
        out: list[Bar] = []
        for bar in bars:
            if isinstance(bar.ts, datetime):
                out.append(bar)
                continue
            if not self._closed(exchange, bar.ts):
                bar = _provisional(bar)
            old = self.state.closes.get((symbol, bar.ts))
            if old is None or old[1]:
                out.append(bar)  # nothing final stored for that day: nothing was revised
                continue
            # Stored closes are in major units, the answer's still as quoted (pence).
            unit = unit_of(bar.currency)
            close = bar.close if unit is None else unit.to_major(bar.close)
            if old[0] != close:
                log.info(
                    "bar.revised",
                    symbol=symbol,
                    ts=bar.ts.isoformat(),
                    old_close=old[0],
                    new_close=close,
                )
            out.append(bar)
        return out
