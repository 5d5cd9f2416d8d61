"""Instruments: each flow ticker's row built from what answers carry, and prices put in major units.

No request is made for metadata: Yahoo's chart ``meta`` (currency, exchangeName,
instrumentType, exchangeTimezoneName, longName/shortName) and Twelve Data's ``meta``
(``mic_code``) ride on the bars as :class:`~finappd.records.InstrumentInfo`; crypto and
FX pairs say their type and currency in the ticker itself (``BTC-USD``, ``EURUSD=X``,
``EUR/USD``). Exchange names become MICs through the calendar's table
(:func:`finappd.calendar.provider_exchange`). Precedence, lowest first: the ticker, the
stored row, the newest answer, the config's ``[instruments."<ticker>"]`` table.

:class:`InstrumentBook` applies that on the writer thread, inside a run's batch
transaction: it settles the unit of each ticker's bars (quality rule 8), converts them
to the major unit, converts the ticker's pre-v4 bars once, upserts its row, and keeps
the not-found streak that marks a ticker delisted and re-asks it only now and then.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from operator import attrgetter

import structlog

from finappd.calendar import EXCHANGES, Exchange, provider_exchange
from finappd.config.instruments import DelistedSettings, InstrumentSettings
from finappd.pairs import fx_pair
from finappd.quality import settle_unit
from finappd.records import Bar, InstrumentInfo
from finappd.store import Store
from finappd.store.instruments import (
    Instrument,
    convert_unitless_bars,
    last_closes,
    read_instruments,
    record_described,
    record_found,
    record_not_found,
    record_seen,
    unitless_bars,
)
from finappd.units import bars_in, unit_of

__all__ = [
    "InstrumentBook",
    "from_ticker",
    "fx_pairs_needed",
    "instrument_type",
    "merge",
    "stored_exchanges",
]

log = structlog.get_logger(__name__)

#: Providers' instrument types -> ``instruments.type``.
_TYPES: dict[str, str] = {
    "equity": "equity", "common stock": "equity", "preferred stock": "equity",
    "depositary receipt": "equity", "reit": "equity", "etf": "etf", "mutualfund": "fund",
    "mutual fund": "fund", "moneymarket": "fund", "index": "index", "currency": "fx",
    "physical currency": "fx", "cryptocurrency": "crypto", "digital currency": "crypto",
    "future": "future",
}  # fmt: skip

_CRYPTO = re.compile(r"^[A-Z0-9]{2,12}-([A-Z]{3,4})$")
_MIC = re.compile(r"^[A-Z0-9]{4}$")


def instrument_type(provider_type: str | None) -> str | None:
    """finappd's type (equity, etf, fund, index, fx, crypto, future) of a provider's word."""
    return None if provider_type is None else _TYPES.get(provider_type.strip().lower())


@lru_cache(maxsize=65536)
def from_ticker(symbol: str) -> Instrument:
    """What the ticker alone says: ``^GSPC`` an index, ``BTC-USD`` crypto in USD, FX pairs."""
    text = symbol.strip().upper()
    if text.startswith("^"):
        return Instrument(symbol, type="index")
    if text.endswith("=F"):
        return Instrument(symbol, type="future")
    if text.endswith("=X") or "/" in text:
        try:
            quote = fx_pair(text)[1]
        except ValueError:
            return Instrument(symbol)
        return Instrument(symbol, type="fx", currency=quote, quoted_unit=quote)
    if (match := _CRYPTO.match(text)) is not None and unit_of(match[1]) is not None:
        return Instrument(symbol, type="crypto", currency=match[1], quoted_unit=match[1])
    return Instrument(symbol)


# Cached: a ticker's answers say the same thing run after run (equal infos hash alike).
@lru_cache(maxsize=65536)
def _answered(symbol: str, provider: str, info: InstrumentInfo) -> Instrument:
    unit = unit_of(info.currency)
    mic = info.mic if info.mic is not None and _MIC.match(info.mic) else None
    # The calendar's table knows MICs, aliases and Yahoo's exchangeName codes; a segment
    # MIC it does not know (Twelve Data's XNGS) is kept as sent after the venue's own.
    venue = (mic and provider_exchange(mic)) or provider_exchange(info.exchange, info.timezone)
    if venue is not None and _MIC.match(venue.code) and venue.code in EXCHANGES:
        mic = venue.code
    return Instrument(
        symbol,
        name=info.name,
        type=instrument_type(info.instrument_type),
        exchange=mic,
        exchange_timezone=info.timezone,
        currency=None if unit is None else unit.currency,
        quoted_unit=None if unit is None else unit.code,
        isin=info.isin,
        provider=provider,
    )


def _declared(symbol: str, declared: InstrumentSettings) -> Instrument:
    unit = unit_of(declared.currency)
    return Instrument(
        symbol,
        name=declared.name,
        type=declared.type,
        exchange=declared.exchange,
        exchange_timezone=declared.exchange_timezone,
        currency=None if unit is None else unit.currency,
        isin=declared.isin,
    )


def merge(
    symbol: str,
    *,
    stored: Instrument | None = None,
    answer: Instrument | None = None,
    declared: InstrumentSettings | None = None,
) -> Instrument:
    """The instrument row: ticker, then stored row, then the answer, then the config."""
    config = None if declared is None else _declared(symbol, declared)
    return _layered(symbol, stored, answer, config)


# Cached: run after run a ticker's stored row and answer are the same (all hashable).
@lru_cache(maxsize=65536)
def _layered(
    symbol: str, stored: Instrument | None, answer: Instrument | None, config: Instrument | None
) -> Instrument:
    merged: Sequence[str | None] = _values(from_ticker(symbol))
    for layer in (stored, answer, config):
        if layer is not None:
            # Field by field, a layer's value wins over the layers below unless it is None.
            values = _values(layer)
            merged = [below if v is None else v for v, below in zip(values, merged, strict=True)]
    return Instrument(symbol, *merged)


#: The fields of an instrument row after ``symbol``, in order.
_FIELDS = tuple(f.name for f in dataclasses.fields(Instrument))[1:]
#: An instrument's values of ``_FIELDS``, as a tuple.
_values: Callable[[Instrument], tuple[str | None, ...]] = attrgetter(*_FIELDS)


class InstrumentBook:
    """The config's declarations and delisting policy, applied to a run's results on the writer."""

    def __init__(
        self,
        declared: Mapping[str, InstrumentSettings] | None = None,
        delisted: DelistedSettings | None = None,
        *,
        streaks: bool = True,
    ) -> None:
        self.declared = dict(declared or {})
        self.policy = delisted or DelistedSettings()
        #: Whether ``not_found`` counts (False: a backfill, gap fill, split re-fetch).
        self.streaks = streaks
        # What this book read of its tickers (their rows, newest closes, unitless bars), kept
        # while the store says nothing else changed them (_recall): a run's tickers are read
        # once, when ``describe`` gives them their rows, and its batches read nothing. On
        # the writer thread, each read row by row wakes the busy event loop for the GIL.
        # Bars are written only by a batch that settles their tickers first, which writes
        # their rows (``store.writes`` moves), so a close kept here is never behind.
        self._rows: dict[str, Instrument | None] = {}
        self._closes: dict[str, float] = {}
        self._unitless: dict[str, set[str]] = {}  # symbol -> providers of its unitless bars
        self._current: tuple[int, int, int] | None = None  # id(store), writes, data_version

    def __repr__(self) -> str:
        return (
            f"<InstrumentBook declared={len(self.declared)} streaks={self.streaks} "
            f"after_runs={self.policy.after_runs} recheck_every={self.policy.recheck_every}>"
        )

    def describe(self, store: Store, tickers: Sequence[str], now: datetime) -> int:
        """Give each of a flow's ``tickers`` its row before any answer: what the ticker and
        the config say, over what is stored. Returns how many rows changed."""
        version, stored = self._recall(store, tickers)
        changed = []
        for symbol in dict.fromkeys(tickers):
            before = stored.get(symbol)
            row = merge(symbol, stored=before, declared=self.declared.get(symbol))
            if row != before:
                changed.append(row)
        record_described(store, changed, now)
        self._rows.update((row.symbol, row) for row in changed)
        self._keep(store, version)
        return len(changed)

    def _recall(
        self, store: Store, symbols: Sequence[str]
    ) -> tuple[int | None, dict[str, Instrument]]:
        """The store's ``data_version`` and the stored rows of ``symbols``; what this book
        holds of them is read only when the store changed since (or cannot tell)."""
        version = store.data_version()
        if version is None or self._current != (id(store), store.writes, version):
            self._rows.clear()
            self._closes.clear()
            self._unitless.clear()
        missing = [s for s in dict.fromkeys(symbols) if s not in self._rows]
        if missing:
            stored = read_instruments(store, missing)
            self._rows.update(dict.fromkeys(missing))
            self._rows.update(stored)
            self._closes.update(last_closes(store, stored))
            # Only tickers stored before v4 with no unit yet can have unitless bars to convert.
            pending = [s for s, row in stored.items() if row.quoted_unit is None]
            for symbol, provider in unitless_bars(store, pending) if pending else ():
                self._unitless.setdefault(symbol, set()).add(provider)
        return version, {s: row for s in symbols if (row := self._rows[s]) is not None}

    def _keep(self, store: Store, version: int | None) -> None:
        """What this book holds is the store's as of now (its own writes are in it)."""
        self._current = None if version is None else (id(store), store.writes, version)

    def settle(
        self, store: Store, symbol: str, provider: str, bars: Sequence[Bar], now: datetime
    ) -> list[Bar]:
        """``bars`` in major units with their currency; the ticker's row upserted."""
        return self.settle_batch(store, [(symbol, provider, bars)], now)[0]

    def settle_batch(
        self, store: Store, items: Sequence[tuple[str, str, Sequence[Bar]]], now: datetime
    ) -> list[list[Bar]]:
        """Each ``(symbol, provider, bars)``'s bars in major units; their rows upserted.

        Two writes per batch, whatever its size (a per-ticker statement each made a run's
        writer ~10x slower), and reads only of tickers ``describe`` did not read or, when
        the store changed meanwhile, of all of them.
        """
        symbols = [symbol for symbol, _, _ in items]
        version, stored = self._recall(store, symbols)
        closes, unitless = self._closes, self._unitless
        changed: dict[str, Instrument] = {}
        same: list[str] = []
        settled: list[list[Bar]] = []
        for symbol, provider, bars in items:
            before = stored.get(symbol)
            row, converted = self._settle_one(
                store,
                symbol,
                provider,
                bars,
                before,
                closes.get(symbol),
                unitless=provider in unitless.get(symbol, ()),
            )
            if row == before:
                same.append(symbol)
            else:
                changed[symbol] = row
            settled.append(converted)
        record_found(store, list(changed.values()), now)
        record_seen(store, [s for s in same if s not in changed], now)
        # Their rows, closes and bars have just changed: read again if they come back.
        for symbol in set(symbols):
            self._rows.pop(symbol, None)
            self._closes.pop(symbol, None)
            self._unitless.pop(symbol, None)
        self._keep(store, version)
        return settled

    def _settle_one(
        self,
        store: Store,
        symbol: str,
        provider: str,
        bars: Sequence[Bar],
        stored: Instrument | None,
        reference: float | None,
        *,
        unitless: bool,
    ) -> tuple[Instrument, list[Bar]]:
        """One ticker's instrument row and its bars in major units (rule 8 applied)."""
        info = None
        for bar in reversed(bars):  # the newest answer's (a loop: this runs per ticker)
            if bar.info is not None:
                info = bar.info
                break
        answer = None if info is None else _answered(symbol, provider, info)
        declared = self.declared.get(symbol)
        answered = unit_of(bars[-1].currency) if bars else None
        known = None if stored is None else unit_of(stored.quoted_unit)
        if answered is None and known is None:
            # A declared minor unit (currency = "GBp") is the unit when no answer names one.
            fallback = from_ticker(symbol).quoted_unit
            answered = unit_of((declared.currency if declared else None) or fallback)
        # The first unit met for a ticker stored before v4: its unitless rows from this
        # provider are in it (v3 stored prices as quoted). Converted once, here.
        if (
            unitless
            and answered is not None
            and convert_unitless_bars(store, symbol, provider, answered)
        ):
            reference = last_closes(store, [symbol]).get(symbol)
        verdict = settle_unit(answered, known, [b.close for b in bars], reference)
        if verdict.reason is not None:
            emit = log.info if verdict.unit is answered and verdict.factor == 1 else log.warning
            emit("bars.unit", symbol=symbol, provider=provider, reason=verdict.reason)
        row = merge(symbol, stored=stored, answer=answer, declared=declared)
        unit = verdict.unit
        if unit is not None:
            row = _layered(
                symbol, row, Instrument(symbol, quoted_unit=unit.code, provider=provider), None
            )
            if row.currency is None:
                row = dataclasses.replace(row, currency=unit.currency)
        elif row.provider != provider:
            row = dataclasses.replace(row, provider=provider)
        return row, bars_in(bars, verdict.effective)

    def not_found(self, store: Store, symbol: str, provider: str, now: datetime) -> None:
        """One more run found no ``symbol``; logs ``ticker.delisted`` when it is marked."""
        if not self.streaks:
            return
        current = self._current
        streak = record_not_found(
            store,
            symbol,
            provider,
            now,
            after_runs=self.policy.after_runs,
            recheck_every_s=self.policy.recheck_every.total_seconds(),
        )
        self._rows.pop(symbol, None)  # it may have a row now
        if current is not None and current[:2] == (id(store), store.writes - 1):
            self._keep(store, current[2])  # this was the one write since: still current
        if streak.delisted:
            log.warning(
                "ticker.delisted",
                symbol=symbol,
                provider=provider,
                not_found_runs=streak.runs,
                next_check=None if streak.next_check is None else streak.next_check.isoformat(),
            )

    def currencies(self, store: Store) -> set[str]:
        """The ISO currencies of the stored and the declared instruments."""
        found = {row.currency for row in read_instruments(store).values() if row.currency}
        for declared in self.declared.values():
            if (unit := unit_of(declared.currency)) is not None:
                found.add(unit.currency)
        return found


def fx_pairs_needed(tickers: Iterable[str], currencies: Iterable[str], base: str) -> list[str]:
    """``C/BASE`` for each currency not yet converted into ``base`` by one of ``tickers``."""
    have: set[tuple[str, str]] = set()
    for ticker in tickers:
        try:
            first, second = fx_pair(ticker)
        except ValueError:
            continue
        have |= {(first, second), (second, first)}
    return [
        f"{currency}/{base}"
        for currency in sorted(currencies)
        if currency != base and (currency, base) not in have
    ]


def stored_exchanges(store: Store, symbols: Iterable[str]) -> dict[str, Exchange]:
    """The exchange each of ``symbols`` trades on per its ``instruments`` row (the provider's
    metadata or the config's ``[instruments]``), for those whose row names one.

    Runs on the writer thread like every store call; the calendar then dates, plans and
    judges gaps by the instrument's own exchange, not only by its ticker's suffix.
    """
    found: dict[str, Exchange] = {}
    for symbol, row in read_instruments(store, symbols).items():
        venue = provider_exchange(row.exchange, row.exchange_timezone)
        if venue is not None:
            found[symbol] = venue
    return found
