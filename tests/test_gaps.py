"""Gaps: trading days with no bar, labelled from the calendar, and filled range by range."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from finappd.calendar import exchange_for
from finappd.config import Settings
from finappd.flows.gaps import Gap, classify, missing_ranges, run_gaps
from finappd.runtime import Runtime
from finappd.sim import SimConfig
from tests.conftest import MakeServer, one_flow

D = date.fromisoformat


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(
    ("symbol", "stored", "start", "now", "expected"),
    [
        # Independence Day (Friday) is a holiday, not a gap; the weekend is not listed at all.
        (
            "AAPL",
            ["2025-07-02", "2025-07-03", "2025-07-07"],
            "2025-07-02",
            utc(2025, 7, 7, 21),
            [("2025-07-04", "holiday")],
        ),
        # A weekend run after Friday's bar: nothing expected is absent.
        ("AAPL", ["2025-03-07"], "2025-03-07", utc(2025, 3, 9, 12), []),
        # Monday's session is open (11:00 New York, EDT since Sunday): not yet published.
        (
            "AAPL",
            ["2025-03-07"],
            "2025-03-07",
            utc(2025, 3, 10, 15),
            [("2025-03-10", "not_yet_published")],
        ),
        # Closed ten minutes ago, inside the 30-minute settle delay: still not published.
        (
            "AAPL",
            ["2025-03-07"],
            "2025-03-07",
            utc(2025, 3, 10, 20, 10),
            [("2025-03-10", "not_yet_published")],
        ),
        # Past close + settle it is missing.
        (
            "AAPL",
            ["2025-03-07"],
            "2025-03-07",
            utc(2025, 3, 10, 20, 31),
            [("2025-03-10", "missing")],
        ),
        # Monday 08:00 New York, before the open: Monday is not expected yet.
        ("AAPL", ["2025-03-07"], "2025-03-07", utc(2025, 3, 10, 12), []),
        # A day missing in the middle of the week.
        (
            "AAPL",
            ["2025-03-03", "2025-03-04", "2025-03-06", "2025-03-07"],
            "2025-03-03",
            utc(2025, 3, 7, 22),
            [("2025-03-05", "missing")],
        ),
        # Tokyo closed at 06:30 UTC: by 07:05 UTC Monday's bar is due, on Tokyo's date.
        (
            "7203.T",
            ["2025-03-07"],
            "2025-03-07",
            utc(2025, 3, 10, 7, 5),
            [("2025-03-10", "missing")],
        ),
        # Good Friday in London, then Easter Monday: both holidays.
        (
            "VOD.L",
            ["2025-04-17", "2025-04-22"],
            "2025-04-17",
            utc(2025, 4, 22, 17),
            [("2025-04-18", "holiday"), ("2025-04-21", "holiday")],
        ),
        # Crypto trades on Saturday, so a missing Saturday is a gap; today's UTC day is open.
        (
            "BTC-USD",
            ["2025-03-07", "2025-03-09"],
            "2025-03-07",
            utc(2025, 3, 10, 1),
            [("2025-03-08", "missing"), ("2025-03-10", "not_yet_published")],
        ),
    ],
)
def test_classify(
    symbol: str, stored: list[str], start: str, now: datetime, expected: list[tuple[str, str]]
) -> None:
    """A day without a bar is a holiday, not yet published or missing by its own calendar."""
    gaps = classify(symbol, exchange_for(symbol), {D(s) for s in stored}, D(start), now)
    assert [(g.day.isoformat(), g.label) for g in gaps] == expected


@pytest.mark.parametrize(
    ("missing", "stored", "max_days", "expected"),
    [
        # Friday and Monday missing: the weekend between does not split the range.
        (["2025-03-07", "2025-03-10"], [], None, [("2025-03-07", "2025-03-10")]),
        # A stored bar between two missing days does.
        (
            ["2025-03-04", "2025-03-06"],
            ["2025-03-05"],
            None,
            [("2025-03-04", "2025-03-04"), ("2025-03-06", "2025-03-06")],
        ),
        # A range longer than the provider allows is cut.
        (
            ["2025-03-03", "2025-03-04", "2025-03-05"],
            [],
            2,
            [("2025-03-03", "2025-03-04"), ("2025-03-05", "2025-03-05")],
        ),
        ([], [], None, []),
    ],
)
def test_missing_ranges(
    missing: list[str], stored: list[str], max_days: int | None, expected: list[tuple[str, str]]
) -> None:
    """Missing days become one request range per contiguous run, cut to the provider's maximum."""
    gaps = [Gap("AAPL", D(d), "missing") for d in missing]
    gaps.append(Gap("AAPL", D("2025-03-08"), "holiday", "weekend"))
    chunks = missing_ranges(gaps, {D(s) for s in stored}, max_days)
    assert [(c.start.isoformat(), c.end.isoformat()) for c in chunks] == expected


def settings(tmp_path: Path, url: str) -> Settings:
    """One Yahoo daily_bars flow of two tickers against the simulator."""
    provider = {"base_url": url, "rate": "10000/minute", "backoff": "1ms"}
    return one_flow(tmp_path / "g.sqlite3", "yahoo", provider, ["AAPL", "MSFT"], lookback_days=10)


def sql(tmp_path: Path, statement: str) -> list[tuple[Any, ...]]:
    """Run ``statement`` on the flow's database and commit."""
    with sqlite3.connect(tmp_path / "g.sqlite3") as conn:
        return conn.execute(statement).fetchall()


def last_json(capsys: pytest.CaptureFixture[str]) -> Any:
    """The JSON document printed last (log lines come before it)."""
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


async def test_fill_asks_once_per_missing_range(
    tmp_path: Path, sim_server: MakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleted days are reported missing and ``--fill`` asks once per contiguous range."""
    sim = await sim_server(SimConfig())
    assert sim.url is not None
    config = settings(tmp_path, sim.url)
    friday = utc(2025, 3, 7, 22)
    async with Runtime(config) as runtime:
        await runtime.run_flow("eod", "manual", now=friday)
    sql(tmp_path, "DELETE FROM bars WHERE symbol = 'AAPL' AND ts IN ('2025-03-04', '2025-03-05')")
    sql(tmp_path, "DELETE FROM bars WHERE symbol = 'MSFT' AND ts IN ('2025-02-27', '2025-03-05')")
    sim.reset()
    assert await run_gaps(config, "eod", fill=True, as_json=True, now=friday) == 0
    report = last_json(capsys)["flows"][0]
    assert sim.stats.requests == 3  # AAPL 4..5 March; MSFT 27 February and 5 March
    assert report["missing"] == 4
    assert [g["day"] for g in report["tickers"]["AAPL"]] == ["2025-03-04", "2025-03-05"]
    assert (report["fill"]["trigger"], report["fill"]["status"]) == ("gaps-fill", "ok")
    assert sql(tmp_path, "SELECT trigger, status FROM runs ORDER BY id DESC LIMIT 1") == [
        ("gaps-fill", "ok")
    ]
    sim.reset()
    assert await run_gaps(config, None, fill=True, as_json=True, now=friday) == 0
    report = last_json(capsys)["flows"][0]
    assert (report["missing"], report["fill"], sim.stats.requests) == (0, None, 0)


async def test_text_report_lists_gaps(
    tmp_path: Path, sim_server: MakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text report names each flow's counts and one line per gap; nothing is sent."""
    sim = await sim_server(SimConfig())
    assert sim.url is not None
    config = settings(tmp_path, sim.url)
    async with Runtime(config) as runtime:
        await runtime.run_flow("eod", "manual", now=utc(2025, 3, 7, 22))
    sim.reset()
    assert await run_gaps(config, "eod", now=utc(2025, 3, 10, 15)) == 0
    lines = capsys.readouterr().out.splitlines()  # structlog's dev renderer also prints here
    out = lines[next(i for i, line in enumerate(lines) if line.startswith("eod:")) :]
    assert out[0] == "eod: 0 missing, 2 not yet published"
    assert out[1].split() == ["AAPL", "2025-03-10", "not_yet_published"]
    assert sim.stats.requests == 0
