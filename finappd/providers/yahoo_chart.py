"""Yahoo's chart payload, as pure functions: query window, local trading dates, bars, quote, events.

Shapes from PROVIDERS.md section 1 (yfinance ``utils.parse_actions``, beanprice fixtures):
parallel arrays under ``chart.result[0]`` with epoch-second ``timestamp``s of the session
open; ``meta`` with ``exchangeTimezoneName``, ``regularMarketPrice``/``regularMarketTime``
and ``currency``; what ``meta`` says of the instrument (``currency``, ``exchangeName``,
``instrumentType``, ``exchangeTimezoneName``, ``longName``/``shortName``) rides on each bar
as its ``info``; ``events.dividends``/``events.splits`` objects keyed by epoch strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from finappd.records import Bar, Dividend, InstrumentInfo, Quote, Split, make_bar

__all__ = [
    "MALFORMED",
    "chart_info",
    "chart_window",
    "exchange_tz",
    "parse_chart",
    "parse_events",
    "parse_quote",
    "range_params",
    "trading_date",
]

#: What a malformed payload raises while being parsed.
MALFORMED = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError)


def chart_window(start: date, end: date) -> tuple[int, int]:
    """``period1``/``period2`` epoch seconds covering ``start..end`` in any exchange timezone."""
    # A day of margin before start: far-east sessions open on the previous UTC day.
    period1 = datetime.combine(start - timedelta(days=1), time(), UTC)
    period2 = datetime.combine(end + timedelta(days=1), time(), UTC)
    return int(period1.timestamp()), int(period2.timestamp())


@lru_cache(maxsize=8192)
def trading_date(timestamp: float, tz: tzinfo) -> date:
    """The exchange-local trading date of a daily bar stamped ``timestamp`` (epoch seconds).

    Cached: every ticker of an exchange has its bars stamped at the same session opens.
    """
    local = datetime.fromtimestamp(timestamp, tz)
    if local.hour == 23:  # a midnight bar shifted back by Yahoo's DST bug
        local += timedelta(hours=1)
    return local.date()


@lru_cache(maxsize=1024)
def range_params(start: date, end: date, *, events: str) -> Mapping[str, str]:
    """The chart query for local trading dates ``start..end`` (read-only: it is shared).

    Cached: a run asks every ticker for the same few windows.
    """
    period1, period2 = chart_window(start, end)
    return MappingProxyType(
        {
            "period1": str(period1),
            "period2": str(period2),
            "interval": "1d",
            "events": events,
            "includePrePost": "false",
        }
    )


def exchange_tz(meta: Mapping[str, Any]) -> tzinfo:
    name = meta.get("exchangeTimezoneName")
    if isinstance(name, str) and name:
        return ZoneInfo(name)
    offset = meta.get("gmtoffset")
    if isinstance(offset, int):
        return timezone(timedelta(seconds=offset))
    raise ValueError("meta has neither exchangeTimezoneName nor gmtoffset")


def _text(meta: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` in ``meta`` holding a non-empty string."""
    for key in keys:
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def chart_info(meta: Mapping[str, Any]) -> InstrumentInfo:
    """What a chart ``meta`` says of the instrument: unit as sent (``GBp``), name, type, venue."""
    return InstrumentInfo(
        currency=_text(meta, "currency"),
        name=_text(meta, "longName", "shortName"),
        instrument_type=_text(meta, "instrumentType"),
        exchange=_text(meta, "exchangeName", "fullExchangeName"),
        timezone=_text(meta, "exchangeTimezoneName"),
    )


def _series(container: object, key: str) -> list[Any]:
    """``container[0][key]`` of Yahoo's ``[{key: [...]}]`` wrapping, or ``[]`` when absent."""
    if not isinstance(container, list) or not container or not isinstance(container[0], dict):
        return []
    values = container[0].get(key)
    return values if isinstance(values, list) else []


def _at(values: list[Any], index: int) -> float | None:
    try:
        value = values[index]
    except IndexError:  # a shorter column: no value
        return None
    if type(value) is float:  # nearly every value: checked first, it is the hot path
        return value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


_NONE = type(None)
#: A column holding only these is used as it is.
_AS_IS = frozenset({float, _NONE})
#: A column holding only these reads as floats (an int is a float, null stays None).
_NUMBERS = frozenset({float, int, _NONE})


def _column(values: list[Any], n: int) -> list[float | None] | None:
    """``values`` as ``n`` floats or None (missing ones at the end None), or None when it
    holds anything but numbers and nulls (a bool, a string: read value by value instead).

    One look at the column's types instead of one per value: what ``_at`` returns for each
    index below ``n``, for every column ``_at`` cannot raise on."""
    types = set(map(type, values))
    if not types <= _AS_IS:
        if not types <= _NUMBERS:
            return None
        values = [None if v is None else float(v) for v in values]
    short = n - len(values)
    return values + [None] * short if short > 0 else values


def parse_chart(result: Mapping[str, Any], symbol: str, start: date, end: date) -> list[Bar]:
    """Bars of one chart ``result`` whose local trading date is in ``start..end``, ascending."""
    timestamps = result.get("timestamp")
    if not timestamps:  # no bars in the range: meta only
        return []
    tz = exchange_tz(result["meta"])
    info = chart_info(result["meta"])
    indicators = result.get("indicators") or {}
    quotes = indicators.get("quote")
    series = (
        _series(quotes, "open"),
        _series(quotes, "high"),
        _series(quotes, "low"),
        _series(quotes, "close"),
        _series(indicators.get("adjclose"), "adjclose"),
        _series(quotes, "volume"),
    )
    bars: dict[date, Bar] = {}
    columns = None
    if type(timestamps) is list:
        n = len(timestamps)
        columns = [c for c in (_column(values, n) for values in series) if c is not None]
    if columns is not None and len(columns) == len(series):
        # Every column is numbers and nulls: one pass over the rows, no check per value.
        currency = info.currency
        for stamp, open_, high, low, close, adj_close, volume in zip(
            timestamps, *columns, strict=False
        ):
            if close is None or stamp is None:  # halted day, fund, or the in-progress bar
                continue
            day = trading_date(stamp, tz)
            if start <= day <= end:
                # Yahoo sometimes repeats a day (yfinance#573); the later row is the fresher.
                bars[day] = make_bar(
                    symbol,
                    day,
                    open_,
                    high,
                    low,
                    close,
                    adj_close,
                    volume,
                    "1d",
                    False,
                    currency,
                    info,
                )
        return [bars[day] for day in sorted(bars)]
    opens, highs, lows, closes, adjcloses, volumes = series
    for i, stamp in enumerate(timestamps):
        close = _at(closes, i)
        if close is None or stamp is None:
            continue
        day = trading_date(stamp, tz)
        if not start <= day <= end:
            continue
        bars[day] = Bar(
            symbol=symbol,
            ts=day,
            open=_at(opens, i),
            high=_at(highs, i),
            low=_at(lows, i),
            close=close,
            adj_close=_at(adjcloses, i),
            volume=_at(volumes, i),
            currency=info.currency,
            info=info,
        )
    return [bars[day] for day in sorted(bars)]


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what}: expected a number, got {value!r}")
    return float(value)


def parse_quote(result: Mapping[str, Any], symbol: str) -> Quote:
    """The latest price in a chart result's ``meta`` (``regularMarketPrice`` at its time)."""
    meta = result["meta"]
    price = _number(meta.get("regularMarketPrice"), "regularMarketPrice")
    stamp = _number(meta.get("regularMarketTime"), "regularMarketTime")
    previous = meta.get("previousClose", meta.get("chartPreviousClose"))
    currency = meta.get("currency")
    return Quote(
        symbol=symbol,
        ts=datetime.fromtimestamp(stamp, UTC),
        price=price,
        currency=currency if isinstance(currency, str) else None,
        previous_close=None if previous is None else _number(previous, "previousClose"),
    )


def parse_events(
    result: Mapping[str, Any], symbol: str, start: date, end: date
) -> tuple[list[Dividend], list[Split]]:
    """Dividends and splits in a chart result's ``events`` going ex in ``start..end``."""
    events = result.get("events") or {}
    tz = exchange_tz(result["meta"])
    meta_currency = result["meta"].get("currency")
    dividends: list[Dividend] = []
    for event in (events.get("dividends") or {}).values():
        day = trading_date(_number(event["date"], "dividend date"), tz)
        if start <= day <= end:
            currency = event.get("currency", meta_currency)
            dividends.append(
                Dividend(
                    symbol=symbol,
                    ex_date=day,
                    amount=_number(event["amount"], "dividend amount"),
                    currency=currency if isinstance(currency, str) else None,
                )
            )
    splits: list[Split] = []
    for event in (events.get("splits") or {}).values():
        day = trading_date(_number(event["date"], "split date"), tz)
        if start <= day <= end:
            splits.append(
                Split(
                    symbol=symbol,
                    ex_date=day,
                    numerator=_number(event["numerator"], "split numerator"),
                    denominator=_number(event["denominator"], "split denominator"),
                )
            )
    dividends.sort(key=lambda d: d.ex_date)
    splits.sort(key=lambda s: s.ex_date)
    return dividends, splits
