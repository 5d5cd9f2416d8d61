"""Bad-data rules: which bars a provider sent are stored as sent, repaired, or rejected.

Providers send NaN, zeros, negative prices, inverted ranges, duplicated days, bars
from the future, absurd volumes and 100x unit slips (PROVIDERS.md §1, §10). Every
bar of a response goes through :func:`check_bars` before it reaches the store; the
good and repaired bars of a response land even when others in it are rejected.

Rules, per bar, in this order (the first rejection wins; repairs accumulate):

1. **Future date** — a daily bar dated after ``today + 1 day`` (``today`` is the UTC
   date at fetch time; the extra day covers exchanges ahead of UTC, e.g. Tokyo), or
   an intraday bar more than a day after ``today``: rejected, ``future_date``.
2. **Close** — ``close`` missing, NaN, infinite, zero or negative: rejected,
   ``bad_close``.
3. **Other prices** (``open``, ``high``, ``low``, ``adj_close``) — missing stays
   missing. NaN or zero is a provider's "no value" placeholder: repaired to missing
   (NULL), ``placeholder_price``. Negative or infinite cannot be a price: rejected,
   ``bad_price``.
4. **Range** — ``high < low``: rejected, ``high_below_low``. ``open`` or ``close``
   outside ``[low, high]`` by more than 1 % (more than rounding or a late
   adjustment): rejected, ``outside_range``; within 1 % the bar is kept as sent.
5. **Volume** — NaN, infinite, negative, or above 10^12 (more than any market trades
   in a day): repaired to missing, ``bad_volume``; the prices still land.
6. **Duplicates** — several bars for the same (symbol, interval, ts) in one
   response: the last one is kept (the freshest, as in PROVIDERS.md §10.6), the
   earlier ones are rejected, ``duplicate``.
7. **Unit slips** — with at least three bars left, a bar whose close is 70-130x
   above or below the median close of the response is a pence/pounds (cents/rand,
   agorot/shekel) slip: every price of it is rescaled by 100 to the unit of the
   majority, ``unit_rescaled``.

Units. Every price is stored in the major unit of its ISO 4217 currency
(``finappd.units``): Yahoo quotes London in pence (``meta.currency == "GBp"``),
Johannesburg in cents (``ZAc``), Tel Aviv in agorot (``ILA``); such bars are divided
by 100 on the way in. Rule 7 repairs a bar that slipped out of its own response's
unit; :func:`settle_unit` catches a unit that changed *between* answers:

8. **Unit change** — the answer names a unit other than the one the stored series was
   quoted in (Yahoo has answered ``GBP`` for prices in pence): the stored series'
   newest close decides which of the two the prices are really in, and a response of a
   currency with a minor unit (GBP, ZAR, ILS, KWD) still ~100x off that close is
   rescaled to it, ``unit_changed``/``unit_rescaled``, logged with the symbol. Such a
   series is never stored 100x off its own history (the price of it: a genuine 1:100
   consolidation of a pence-quoted listing would be rescaled too, and logged).

:func:`screen` applies the rules to one provider response, logs ``bar.rejected`` and
``bar.repaired`` with symbol, provider, ts and reason, and raises
:class:`~finappd.errors.BadResponseError` when a response had bars and none survived,
so that ticker is recorded as failed instead of silently storing nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog

from finappd.errors import BadResponseError
from finappd.records import Bar
from finappd.units import MINOR_UNITS, Unit

__all__ = ["MAX_VOLUME", "Checked", "Settled", "check_bars", "screen", "settle_unit"]

log = structlog.get_logger(__name__)

#: More shares (or units) than any market trades in a day.
MAX_VOLUME = 1e12
#: How far open or close may sit outside [low, high] before the bar is rejected.
RANGE_TOLERANCE = 0.01
#: A bar this many times off the median close (either way) slipped a 100x unit.
_SLIP_LOW, _SLIP_HIGH = 70.0, 130.0


@dataclass(slots=True)
class Checked:
    """The outcome of :func:`check_bars`: bars to store, and what was rejected or repaired."""

    good: list[Bar] = field(default_factory=list)
    rejected: list[tuple[Bar, str]] = field(default_factory=list)
    repaired: list[tuple[Bar, str]] = field(default_factory=list)


def _finite_positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def _day_of(ts: date | datetime) -> date:
    return ts.astimezone(UTC).date() if isinstance(ts, datetime) else ts


def _check_one(bar: Bar, today: date, latest: date) -> tuple[Bar | None, list[str]]:
    """Rules 1-5 for one bar: ``(bar or None if rejected, reasons)``; ``latest`` is today + 1."""
    ts = bar.ts
    if (ts if type(ts) is date else _day_of(ts)) > latest:
        return None, [f"future_date: {bar.ts_text()} is after {today}"]
    if not _finite_positive(bar.close):
        return None, [f"bad_close: close is {bar.close!r}"]
    repairs: list[str] = []
    fixes: dict[str, Any] = {}  # field -> repaired value (None: missing)
    prices = (
        ("open", bar.open),
        ("high", bar.high),
        ("low", bar.low),
        ("adj_close", bar.adj_close),
    )
    for name, value in prices:
        if value is None or 0 < value < math.inf:  # missing, or a price as it should be
            continue
        if math.isnan(value) or value == 0:
            fixes[name] = None
            repairs.append(f"placeholder_price: {name} {value!r} stored as missing")
        else:  # negative or infinite
            return None, [f"bad_price: {name} is {value!r}"]
    high, low, open_ = bar.high, bar.low, bar.open
    if fixes:
        high, low = fixes.get("high", high), fixes.get("low", low)
        open_ = fixes.get("open", open_)
    if high is not None and low is not None:
        if high < low:
            return None, [f"high_below_low: high {high!r} < low {low!r}"]
        floor, ceiling = low * (1 - RANGE_TOLERANCE), high * (1 + RANGE_TOLERANCE)
        for name, value in (("open", open_), ("close", bar.close)):
            if value is not None and not floor <= value <= ceiling:
                return None, [f"outside_range: {name} {value!r} outside [{low!r}, {high!r}]"]
    volume = bar.volume
    if volume is not None and not (math.isfinite(volume) and 0 <= volume <= MAX_VOLUME):
        fixes["volume"] = None
        repairs.append(f"bad_volume: volume {volume!r} stored as missing")
    return (replace(bar, **fixes) if fixes else bar), repairs


def _rescale(bar: Bar, factor: float) -> Bar:
    def scaled(value: float | None) -> float | None:
        return None if value is None else value * factor

    return replace(
        bar,
        open=scaled(bar.open),
        high=scaled(bar.high),
        low=scaled(bar.low),
        close=bar.close * factor,
        adj_close=scaled(bar.adj_close),
    )


def check_bars(bars: Sequence[Bar], today: date) -> Checked:
    """Apply the module's rules to one response's ``bars`` (pure: no clock, no logging)."""
    checked = Checked()
    latest = today + timedelta(days=1)
    # Keyed by ts itself: tz-aware datetimes are equal (and hash alike) when the instant
    # is, as their UTC text is; a date never equals a datetime, nor do their texts.
    kept: dict[tuple[str, str, date | datetime], Bar] = {}
    inf = math.inf
    for bar in bars:
        ts, close, open_, high, low = bar.ts, bar.close, bar.open, bar.high, bar.low
        volume = bar.volume
        # Nearly every bar: a daily bar that rules 1-5 keep as it is, in one expression
        # whose every test is the one _check_one makes, in its order; anything else (an
        # intraday bar, a missing high or low, any value a rule acts on) takes _check_one.
        if (
            type(ts) is date
            and ts <= latest
            and type(close) is float
            and 0 < close < inf
            and (open_ is None or 0 < open_ < inf)
            and high is not None
            and 0 < high < inf
            and low is not None
            and 0 < low < inf
            and ((adj := bar.adj_close) is None or 0 < adj < inf)
            and not high < low
            and low * (1 - RANGE_TOLERANCE) <= close <= high * (1 + RANGE_TOLERANCE)
            and (
                open_ is None
                or low * (1 - RANGE_TOLERANCE) <= open_ <= high * (1 + RANGE_TOLERANCE)
            )
            and (volume is None or (type(volume) is float and 0 <= volume <= MAX_VOLUME))
        ):
            fixed = bar
        else:
            checked_one, reasons = _check_one(bar, today, latest)
            if checked_one is None:
                checked.rejected.append((bar, reasons[0]))
                continue
            fixed = checked_one
            if reasons:
                checked.repaired.extend((fixed, reason) for reason in reasons)
        key = (fixed.symbol, fixed.interval, fixed.ts)
        if (earlier := kept.pop(key, None)) is not None:
            checked.rejected.append((earlier, "duplicate: a later bar has the same ts"))
        kept[key] = fixed
    good = list(kept.values())
    if len(good) >= 3:
        median = statistics.median(b.close for b in good)
        for i, bar in enumerate(good):
            if _SLIP_LOW <= bar.close / median <= _SLIP_HIGH:
                factor = 0.01
            elif _SLIP_LOW <= median / bar.close <= _SLIP_HIGH:
                factor = 100.0
            else:
                continue
            good[i] = _rescale(bar, factor)
            reason = (
                f"unit_rescaled: close {bar.close!r} is ~100x off the response's median "
                f"{median!r}; prices multiplied by {factor:g}"
            )
            checked.repaired.append((good[i], reason))
    checked.good = good
    return checked


def screen(bars: Sequence[Bar], provider: str, now: datetime | None = None) -> list[Bar]:
    """The bars of one response fit to store; logs each rejection and repair.

    Raises ``BadResponseError`` when there were bars and every one was rejected.
    """
    if not bars:
        return []
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    checked = check_bars(bars, today)
    for bar, reason in checked.rejected:
        log.warning(
            "bar.rejected", symbol=bar.symbol, provider=provider, ts=bar.ts_text(), reason=reason
        )
    for bar, reason in checked.repaired:
        log.info(
            "bar.repaired", symbol=bar.symbol, provider=provider, ts=bar.ts_text(), reason=reason
        )
    if not checked.good:
        symbol = bars[0].symbol
        raise BadResponseError(
            f"{provider}: all {len(bars)} bars of {symbol} failed the quality rules "
            f"(first: {checked.rejected[0][1]})",
            provider=provider,
            symbol=symbol,
        )
    return checked.good


@dataclass(frozen=True, slots=True)
class Settled:
    """Rule 8's verdict: the unit the prices are in, a further factor, and why (None: as said)."""

    unit: Unit | None
    factor: float = 1.0
    reason: str | None = None

    @property
    def effective(self) -> Unit | None:
        """``unit`` with ``factor`` folded in: what turns the answer's prices into stored ones."""
        if self.unit is None or self.factor == 1.0:
            return self.unit
        return replace(self.unit, per_major=self.unit.per_major / self.factor)


#: Currencies some provider quotes in a minor unit (GBP as GBp, ZAR as ZAc, ILS as ILA).
_MINOR_OF = frozenset(currency for currency, _ in MINOR_UNITS.values())


def _slip(ratio: float) -> float:
    """The factor that undoes a ~100x slip of ``ratio`` (new / stored), or 1.0."""
    if _SLIP_LOW <= ratio <= _SLIP_HIGH:
        return 0.01
    if _SLIP_LOW <= 1 / ratio <= _SLIP_HIGH:
        return 100.0
    return 1.0


def settle_unit(
    answered: Unit | None, stored: Unit | None, closes: Sequence[float], last_close: float | None
) -> Settled:
    """Rule 8: the unit one answer's ``closes`` are in, judged against the stored series.

    ``answered`` is the unit the answer names, ``stored`` the one the series was quoted in
    so far, ``last_close`` its newest stored close (major unit). Pure.
    """
    unit = answered or stored
    if unit is None or not closes:
        return Settled(unit)
    reason = None
    if answered is not None and stored is not None and answered.code != stored.code:
        reason = f"unit_changed: the answer says {answered.code}, the series was {stored.code}"
    changed_currency = stored is not None and unit.currency != stored.currency
    if last_close is None or last_close <= 0 or changed_currency:
        # Closes in another currency say nothing about a slip (USD to INR is ~85x).
        return Settled(unit, reason=reason)
    median = statistics.median(closes)
    if (
        answered is not None
        and stored is not None
        and answered.currency == stored.currency
        and answered.code != stored.code
    ):

        def distance(candidate: Unit) -> float:
            return abs(math.log(candidate.to_major(median) / last_close))

        if distance(stored) < distance(answered):
            unit = stored
            reason = (
                f"unit_changed: the answer says {answered.code} but its prices are in "
                f"{stored.code}, like the stored series (last close {last_close!r})"
            )
    # Only a currency with a minor unit can slip by its unit: a USD series 100x off its
    # history is a 1:100 split or a new price universe, never pence.
    factor = _slip(unit.to_major(median) / last_close) if unit.currency in _MINOR_OF else 1.0
    if factor != 1.0:
        reason = (
            f"unit_rescaled: the answer's median close {median!r} {unit.code} is ~100x off "
            f"the stored close {last_close!r}; prices multiplied by {factor:g}"
        )
    return Settled(unit, factor, reason)
