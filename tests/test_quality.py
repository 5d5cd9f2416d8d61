"""Bad-data rules: each bad bar is rejected or repaired by its rule; good rows still land."""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from finappd.errors import BadResponseError
from finappd.quality import MAX_VOLUME, _check_one, check_bars, screen
from finappd.records import Bar
from finappd.runtime import Runtime
from finappd.sim import SimConfig, synthetic_bars
from finappd.sim.faults import Fault, FaultPlan
from tests.conftest import MakeServer, one_flow

TODAY = date(2026, 3, 10)
NAN = float("nan")
INF = float("inf")


def bar(day: int = 2, **fields: Any) -> Bar:
    """A sane bar of March ``day`` 2026 with ``fields`` overridden."""
    values: dict[str, Any] = {
        "open": 100.0,
        "high": 102.0,
        "low": 99.0,
        "close": 101.0,
        "adj_close": 100.5,
        "volume": 1e6,
    }
    values.update(fields)
    return Bar(symbol="AAA", ts=date(2026, 3, day), **values)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"close": NAN}, "bad_close"),
        ({"close": INF}, "bad_close"),
        ({"close": 0.0}, "bad_close"),
        ({"close": -101.0}, "bad_close"),
        ({"open": -100.0}, "bad_price"),
        ({"low": -INF}, "bad_price"),
        ({"adj_close": INF}, "bad_price"),
        ({"high": 98.0, "low": 99.0}, "high_below_low"),
        ({"close": 110.0}, "outside_range"),
        ({"open": 90.0}, "outside_range"),
    ],
)
def test_impossible_bar_is_rejected_with_its_rule(fields: dict[str, Any], reason: str) -> None:
    """A bar with an impossible close, price or range is rejected, naming the rule."""
    checked = check_bars([bar(**fields)], TODAY)
    assert checked.good == []
    [(_, why)] = checked.rejected
    assert why.startswith(reason + ":")


@pytest.mark.parametrize(
    ("fields", "stored", "reason"),
    [
        ({"open": 0.0}, {"open": None}, "placeholder_price"),
        ({"high": NAN}, {"high": None}, "placeholder_price"),
        ({"adj_close": 0.0}, {"adj_close": None}, "placeholder_price"),
        ({"volume": NAN}, {"volume": None}, "bad_volume"),
        ({"volume": -5.0}, {"volume": None}, "bad_volume"),
        ({"volume": MAX_VOLUME * 10}, {"volume": None}, "bad_volume"),
    ],
)
def test_placeholder_values_are_repaired_to_missing(
    fields: dict[str, Any], stored: dict[str, Any], reason: str
) -> None:
    """A placeholder price or an absurd volume becomes NULL and the rest of the bar is kept."""
    checked = check_bars([bar(**fields)], TODAY)
    assert checked.rejected == []
    assert checked.good == [replace(bar(**fields), **stored)]
    [(_, why)] = checked.repaired
    assert why.startswith(reason + ":")


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"open": None, "high": None, "low": None, "adj_close": None, "volume": None},
        {"volume": 0.0},
        {"close": 102.5},  # within 1 % of high: rounding, kept as sent
        {"high": 101.0, "low": 101.0, "open": 101.0},  # a flat fund day
    ],
)
def test_sane_bar_is_kept_as_sent(fields: dict[str, Any]) -> None:
    """A sane bar, including missing fields, zero volume and rounding noise, passes unchanged."""
    checked = check_bars([bar(**fields)], TODAY)
    assert (checked.good, checked.rejected, checked.repaired) == ([bar(**fields)], [], [])


@pytest.mark.parametrize(
    ("ts", "kept"),
    [
        (TODAY, True),
        (TODAY + timedelta(days=1), True),  # Tokyo is already tomorrow
        (TODAY + timedelta(days=2), False),
        (datetime(2026, 3, 11, 23, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 12, 0, 1, tzinfo=UTC), False),
    ],
)
def test_bar_from_the_future_is_rejected(ts: date | datetime, kept: bool) -> None:
    """A bar dated more than a day after today is rejected as future_date."""
    checked = check_bars([replace(bar(), ts=ts)], TODAY)
    assert bool(checked.good) is kept
    if not kept:
        assert checked.rejected[0][1].startswith("future_date:")


_VALUES = [None, NAN, INF, -INF, 0.0, -1.0, 98.0, 99.0, 100.5, 102.0, 104.0, 2e12, 101]
_FIELDS = ["open", "high", "low", "close", "adj_close", "volume"]


@pytest.mark.parametrize(
    ("first", "second"),
    [(a, b) for i, a in enumerate(_FIELDS) for b in _FIELDS[i + 1 :]],
)
def test_every_bar_gets_the_rules_verdict_whatever_path_checks_it(first: str, second: str) -> None:
    """check_bars keeps the common bar through a shortcut: for any two fields set to any
    values (placeholders, bounds, out of range, ints) its verdict on a bar is the one
    rules 1-5 give that bar (``_check_one``)."""
    for a, b in itertools.product(_VALUES, repeat=2):
        fields: dict[str, Any] = {first: a, second: b}
        one = bar(**fields)
        if one.close is None:
            continue
        fixed, reasons = _check_one(one, TODAY, TODAY + timedelta(days=1))
        checked = check_bars([one], TODAY)
        assert checked.good == ([] if fixed is None else [fixed])
        assert checked.rejected == ([] if fixed is not None else [(one, reasons[0])])
        assert checked.repaired == ([(fixed, r) for r in reasons] if fixed is not None else [])


def test_duplicate_days_keep_the_last_bar() -> None:
    """Two bars for the same day: the later one is kept, the earlier one rejected."""
    first, second = bar(3, volume=1e6), bar(3, volume=2e6)
    checked = check_bars([bar(2), first, second], TODAY)
    assert checked.good == [bar(2), second]
    assert [(b, why.split(":")[0]) for b, why in checked.rejected] == [(first, "duplicate")]


@pytest.mark.parametrize("factor", [0.01, 100.0])
def test_unit_slip_is_rescaled_to_the_series_unit(factor: float) -> None:
    """A bar 100x off its response (pence vs pounds) is rescaled to the majority's unit."""
    bars = [bar(d) for d in range(2, 7)]
    slipped = bar(
        5, open=100.0 * factor, high=102.0 * factor, low=99.0 * factor, close=101.0 * factor
    )
    slipped = replace(slipped, adj_close=100.5 * factor)
    checked = check_bars([*bars[:3], slipped, bars[4]], TODAY)
    assert checked.rejected == []
    fixed = checked.good[3]
    for name in ("open", "high", "low", "close", "adj_close"):
        assert getattr(fixed, name) == pytest.approx(getattr(bars[3], name))
    [(_, why)] = checked.repaired
    assert why.startswith("unit_rescaled:")


def test_real_moves_are_not_unit_slips() -> None:
    """A 50 % crash or a doubling is kept as sent; only ~100x is a unit slip."""
    bars = [bar(2), bar(3), bar(4, open=50.0, high=51.0, low=49.0, close=50.0)]
    bars.append(bar(5, open=200.0, high=210.0, low=199.0, close=205.0))
    assert check_bars(bars, TODAY).good == bars


def test_screen_logs_each_rejection_with_symbol_and_reason() -> None:
    """screen() returns the good bars and logs bar.rejected / bar.repaired with the symbol."""
    bars = [bar(2), bar(3, close=NAN), bar(4, volume=-1.0)]
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    with capture_logs() as logs:
        good = screen(bars, "yahoo", now)
    assert good == [bar(2), bar(4, volume=None)]
    rejected = [e for e in logs if e["event"] == "bar.rejected"]
    repaired = [e for e in logs if e["event"] == "bar.repaired"]
    assert [(e["symbol"], e["ts"], e["provider"]) for e in rejected] == [
        ("AAA", "2026-03-03", "yahoo")
    ]
    assert rejected[0]["reason"].startswith("bad_close")
    assert [(e["symbol"], e["ts"]) for e in repaired] == [("AAA", "2026-03-04")]


def test_screen_fails_the_ticker_when_every_bar_is_bad() -> None:
    """A response whose every bar is rejected fails the ticker with a bad_response reason."""
    with pytest.raises(BadResponseError, match="quality rules") as info:
        screen([bar(2, close=-1.0), bar(3, close=NAN)], "yahoo")
    assert (info.value.kind, info.value.symbol) == ("bad_response", "AAA")
    assert screen([], "yahoo") == []


async def test_bad_rows_are_dropped_and_good_rows_of_the_same_response_land(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A chart with NaN, negative, inverted, 100x-slipped, duplicate and future rows: the
    good and repaired rows land, every bad one is logged with symbol and reason."""
    plan = FaultPlan(by_symbol={"BAD": Fault("bad_data")})
    sim = await sim_server(SimConfig(faults=plan))
    provider = {"base_url": sim.url, "rate": "10000/minute"}
    db = tmp_path / "q.sqlite3"
    settings = one_flow(db, "yahoo", provider, ["BAD", "GOOD"], lookback_days=30)
    with capture_logs() as logs:
        async with Runtime(settings) as runtime:
            summary = await runtime.run_flow("eod", "manual")
    assert (summary.status, summary.tickers_ok) == ("ok", 2)
    with sqlite3.connect(tmp_path / "q.sqlite3") as conn:
        rows = conn.execute(
            "SELECT ts, open, high, low, close, adj_close, volume FROM bars "
            "WHERE symbol = 'BAD' ORDER BY ts"
        ).fetchall()
        [(good_rows,)] = conn.execute("SELECT count(*) FROM bars WHERE symbol = 'GOOD'").fetchall()
    stored = {row[0]: row[1:] for row in rows}
    days = sorted(stored)
    # The sim serves the bars of the last 30 days; BAD lost exactly the three impossible rows.
    assert len(stored) == good_rows - 3
    truth = {
        b.day.isoformat(): b
        for b in synthetic_bars("BAD", date.fromisoformat(days[0]), date.fromisoformat(days[-1]))
    }
    served = sorted(truth)
    rejected_days = {served[-7], served[-6], served[-4]}  # NaN close, negative, high < low
    assert rejected_days.isdisjoint(stored)
    for day, (o, h, lo, c, adj, vol) in stored.items():
        sim_bar = truth[day]
        assert c == pytest.approx(sim_bar.close)
        assert adj == pytest.approx(sim_bar.adj_close)
        assert h == pytest.approx(sim_bar.high)
        assert lo == pytest.approx(sim_bar.low)
        expect_open = None if day in (served[-5], served[-1]) else pytest.approx(sim_bar.open)
        assert o == expect_open
        # The duplicate of the last day differs only in volume (+1); the later row wins.
        volume = {served[-3]: None, served[-1]: sim_bar.volume + 1}.get(day, sim_bar.volume)
        assert vol == volume
    events = [e for e in logs if e["event"] in ("bar.rejected", "bar.repaired")]
    reasons = {(e["event"], e["ts"], e["reason"].split(":")[0]) for e in events}
    assert all(e["symbol"] == "BAD" for e in events)
    assert reasons == {
        ("bar.rejected", served[-7], "bad_close"),
        ("bar.rejected", served[-6], "bad_close"),
        ("bar.rejected", served[-4], "high_below_low"),
        ("bar.repaired", served[-5], "placeholder_price"),
        ("bar.repaired", served[-3], "bad_volume"),
        ("bar.repaired", served[-2], "unit_rescaled"),
    }
