"""Corporate actions: a split the daily flow meets rewrites the stored history to its basis."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from finappd.config import ProviderSettings, Settings
from finappd.flows.backfill import run_backfill
from finappd.providers import TiingoProvider, make_session
from finappd.records import Dividend, Split
from finappd.runtime import Runtime
from finappd.sim import SimConfig
from finappd.sim.prices import bar_on, symbol_key
from tests.conftest import MakeServer, one_flow
from tests.test_provider_support import mock_http
from tests.test_tiingo_parse import row

D = date.fromisoformat
#: The run's injected clock: Friday 2024-06-28 after the New York close.
NOW = datetime(2024, 6, 28, 22, 0, tzinfo=UTC)
EX_DATE = D("2024-06-24")
TIINGO_PRICES = re.compile(
    r"^http://127\.0\.0\.1:9/tiingo/daily/[^/]+/prices\?.*$"
)  # inside the flow's 10-day lookback window of NOW


def make_settings(tmp_path: Path, url: str) -> Settings:
    """One Yahoo daily_bars flow over SPLT and PLAIN against the simulator."""
    options = {"base_url": url, "rates": [], "backoff": "1ms"}
    return one_flow(tmp_path / "f.sqlite3", "yahoo", options, ["SPLT", "PLAIN"], lookback_days=10)


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the DB as a reader would."""
    with sqlite3.connect(f"file:{tmp_path / 'f.sqlite3'}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def close_on(tmp_path: Path, symbol: str, day: str) -> float:
    """The stored close of ``symbol`` on ``day``."""
    rows = query(tmp_path, f"SELECT close FROM bars WHERE symbol = '{symbol}' AND ts = '{day}'")  # noqa: S608 - test constants
    return float(rows[0][0])


async def test_new_split_in_window_refetches_older_history(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A split first seen inside the window re-fetches all older stored bars on the new basis."""
    sim = await sim_server()
    assert sim.url is not None
    settings = make_settings(tmp_path, sim.url)
    async with Runtime(settings) as runtime:
        provider = runtime.providers["yahoo"]
        setattr(provider, "max_range_days", 60)  # noqa: B010 - several refetch chunks
        await run_backfill(
            flow="eod",
            kind="daily_bars",
            tickers=["SPLT", "PLAIN"],
            start=D("2024-01-02"),
            # Up to Thursday: the Friday run has a new bar to fetch, so it asks for its
            # revision window (incremental runs skip tickers with nothing new).
            end=D("2024-06-27"),
            providers=[provider],
            store=runtime.store,
            writer=runtime.writer,
            num_workers=2,
        )
        raw = bar_on(symbol_key("SPLT"), D("2024-03-01")).close
        assert close_on(tmp_path, "SPLT", "2024-03-01") == raw
        sim.config.splits = {"SPLT": (EX_DATE, 4, 1)}
        sim.reset()
        with capture_logs() as logs:
            summary = await runtime.run_flow("eod", "manual", now=NOW)
        assert summary.status == "ok"
        # 2 daily requests + SPLT's history 2024-01-02..2024-06-19 in 60-day chunks (3).
        assert sim.stats.requests == 2 + 3
        events = [e["event"] for e in logs]
        assert events.count("split.detected") == 1
        assert events.count("split.refetch") == 1
        assert close_on(tmp_path, "SPLT", "2024-03-01") == round(raw / 4, 4)
        assert close_on(tmp_path, "SPLT", "2024-06-20") == round(
            bar_on(symbol_key("SPLT"), D("2024-06-20")).close / 4, 4
        )
        assert close_on(tmp_path, "SPLT", "2024-06-24") == bar_on(symbol_key("SPLT"), EX_DATE).close
        plain = bar_on(symbol_key("PLAIN"), D("2024-03-01")).close
        assert close_on(tmp_path, "PLAIN", "2024-03-01") == plain
        assert query(tmp_path, "SELECT symbol, ex_date, numerator, denominator FROM splits") == [
            ("SPLT", "2024-06-24", 4.0, 1.0)
        ]
        # The split is known now: the next run re-fetches nothing (and, with Friday's
        # final bars stored, the incremental run asks for nothing at all).
        sim.reset()
        with capture_logs() as logs:
            await runtime.run_flow("eod", "manual", now=NOW)
        assert sim.stats.requests == 0
        assert "split.refetch" not in [e["event"] for e in logs]


async def test_split_without_older_history_is_stored_without_refetch(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A split met on a first run (no older bars stored) is recorded and nothing is re-fetched."""
    sim = await sim_server(SimConfig(splits={"SPLT": (EX_DATE, 3, 2)}))
    assert sim.url is not None
    async with Runtime(make_settings(tmp_path, sim.url)) as runtime:
        await runtime.run_flow("eod", "manual", now=NOW)
    assert sim.stats.requests == 2
    assert query(tmp_path, "SELECT symbol, numerator, denominator FROM splits") == [
        ("SPLT", 3.0, 2.0)
    ]


async def test_yahoo_bars_and_actions_from_one_chart_call(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Yahoo's bars_and_actions reads bars and the split from a single chart request."""
    sim = await sim_server(SimConfig(splits={"SPLT": (EX_DATE, 4, 1)}))
    assert sim.url is not None
    async with Runtime(make_settings(tmp_path, sim.url)) as runtime:
        provider = runtime.providers["yahoo"]
        bars, actions = await provider.bars_and_actions("SPLT", D("2024-06-17"), D("2024-06-28"))
    assert sim.stats.requests == 1
    assert actions == ([], [Split("SPLT", EX_DATE, 4.0, 1.0)])
    before = next(b for b in bars if b.ts == D("2024-06-21"))
    assert before.close == round(bar_on(symbol_key("SPLT"), D("2024-06-21")).close / 4, 4)


async def test_tiingo_bars_and_actions_from_one_request() -> None:
    """Tiingo's bars_and_actions turns divCash and splitFactor of the same rows into actions."""
    rows = [
        row("2020-08-07", 444.45, divCash=0.82),
        row("2020-08-31", 129.04, splitFactor=4.0),
    ]
    session = make_session()
    settings = ProviderSettings.model_validate(
        {"base_url": "http://127.0.0.1:9", "api_key": "k", "rates": []}
    )
    try:
        with mock_http() as mocked:
            mocked.get(TIINGO_PRICES, payload=rows)
            provider = TiingoProvider("tiingo", settings, session)
            bars, actions = await provider.bars_and_actions(
                "AAPL", D("2020-08-01"), D("2020-08-31")
            )
    finally:
        await session.close()
    assert [b.ts for b in bars] == [D("2020-08-07"), D("2020-08-31")]
    assert actions == (
        [Dividend("AAPL", D("2020-08-07"), 0.82, "USD")],
        [Split("AAPL", D("2020-08-31"), 4.0, 1.0)],
    )
    assert provider.http.requests == 1
