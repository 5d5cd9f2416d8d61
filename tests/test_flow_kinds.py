"""The quotes, fx and crypto flow kinds end to end against the simulator, with injected ``now``."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from finappd.config import Settings
from finappd.errors import ConfigError
from finappd.flows.kinds import FLOW_KINDS
from finappd.flows.quotes import in_session
from finappd.providers import PROVIDER_KINDS
from finappd.runtime import Runtime
from finappd.validate import load_checked
from tests.conftest import MakeServer, one_flow


def make_settings(tmp_path: Path, providers: dict[str, Any], **flow: Any) -> Settings:
    """One flow of the given kind over ``providers`` (the first is the flow's provider)."""
    (name, options), *others = providers.items()
    db = tmp_path / "f.sqlite3"
    return one_flow(db, name, options, flow.pop("tickers"), dict(others), name="f", **flow)


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the DB as a reader would."""
    with sqlite3.connect(f"file:{tmp_path / 'f.sqlite3'}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize(
    ("symbol", "now", "is_open"),
    [
        ("AAPL", datetime(2024, 6, 29, 15, 0, tzinfo=UTC), False),  # Saturday
        ("AAPL", datetime(2024, 7, 1, 15, 0, tzinfo=UTC), True),  # Monday 11:00 New York
        ("AAPL", datetime(2024, 7, 1, 13, 29, tzinfo=UTC), False),  # 09:29, before the open
        ("AAPL", datetime(2024, 7, 1, 20, 0, tzinfo=UTC), False),  # 16:00, the close
        ("AAPL", datetime(2024, 7, 3, 17, 30, tzinfo=UTC), False),  # half day: closed 13:00
        ("AAPL", datetime(2024, 7, 4, 15, 0, tzinfo=UTC), False),  # Independence Day
        ("AAPL", datetime(2024, 3, 11, 13, 45, tzinfo=UTC), True),  # 09:45 EDT after DST
        ("7203.T", datetime(2024, 7, 1, 1, 0, tzinfo=UTC), True),  # 10:00 Tokyo
        ("VOD.L", datetime(2024, 7, 1, 7, 30, tzinfo=UTC), True),  # 08:30 BST
        ("BTC-USD", datetime(2024, 6, 29, 15, 0, tzinfo=UTC), True),  # crypto: 24/7
        ("EURUSD=X", datetime(2024, 6, 30, 15, 0, tzinfo=UTC), False),  # FX: weekdays
    ],
)
def test_in_session(symbol: str, now: datetime, is_open: bool) -> None:
    """A quote is asked for only inside the exchange's session, holidays and half days known."""
    assert in_session(symbol, now) is is_open


async def test_quotes_flow_skips_closed_markets_and_keeps_a_series(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A weekend run asks only for the 24/7 ticker; snapshots land in quotes and latest_quote."""
    sim = await sim_server()
    settings = make_settings(
        tmp_path,
        {"yahoo": {"base_url": sim.url, "rates": []}},
        kind="quotes",
        tickers=["AAPL", "BTC-USD"],
        timezone="America/New_York",
    )
    async with Runtime(settings) as runtime:
        weekend = await runtime.run_flow("f", "manual", now=datetime(2024, 6, 29, 15, tzinfo=UTC))
        assert weekend.status == "ok"
        assert sim.stats.requests == 1
        sim.reset()
        await runtime.run_flow("f", "manual", now=datetime(2024, 7, 1, 15, tzinfo=UTC))
        assert sim.stats.requests == 2
    rows = query(tmp_path, "SELECT symbol, price, provider FROM latest_quote ORDER BY symbol")
    assert [(r[0], r[2]) for r in rows] == [("AAPL", "yahoo"), ("BTC-USD", "yahoo")]
    assert all(r[1] > 0 for r in rows)
    assert query(tmp_path, "SELECT COUNT(*) FROM bars") == [(0,)]


async def test_fx_flow_writes_reference_rates(tmp_path: Path, sim_server: MakeServer) -> None:
    """EURUSD=X and GBP/JPY become fx_rates rows for each ECB publication day of the window."""
    sim = await sim_server()
    settings = make_settings(
        tmp_path,
        {"frankfurter": {"base_url": f"{sim.url}/frankfurter/v1"}},
        kind="fx",
        tickers=["EURUSD=X", "GBP/JPY"],
        lookback_days=7,
    )
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("f", "manual", now=datetime(2024, 3, 8, 18, tzinfo=UTC))
    assert summary.status == "ok"
    assert sim.stats.requests == 2
    rows = query(tmp_path, "SELECT base, quote, day FROM fx_rates ORDER BY base, day")
    days = ["2024-03-01", "2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]
    assert rows == [("EUR", "USD", d) for d in days] + [("GBP", "JPY", d) for d in days]
    assert summary.rows_written == len(rows)


async def test_crypto_flow_writes_utc_days(tmp_path: Path, sim_server: MakeServer) -> None:
    """BTC-USD from CoinGecko lands as daily bars for every UTC day, weekends included."""
    sim = await sim_server()
    now = datetime.now(UTC)  # CoinGecko's 365-day cap is judged by the provider's clock
    settings = make_settings(
        tmp_path,
        {"coingecko": {"base_url": f"{sim.url}/coingecko", "rates": []}},
        kind="crypto",
        tickers=["BTC-USD"],
        lookback_days=9,
    )
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("f", "manual", now=now)
    assert summary.status == "ok"
    days = [r[0] for r in query(tmp_path, "SELECT ts FROM bars WHERE symbol = 'BTC-USD'")]
    today = now.date()
    expected = [(today - timedelta(days=n)).isoformat() for n in range(9, 0, -1)]
    assert [d for d in days if d < today.isoformat()] == expected


@pytest.mark.parametrize(
    ("kind", "provider", "problem"),
    [
        ("fx", "yahoo", "has no fx"),
        ("quotes", "frankfurter", "has no quote"),
        ("crypto", "stooq", "has no crypto"),
    ],
)
def test_flow_kind_needs_the_capability(
    tmp_path: Path, kind: str, provider: str, problem: str
) -> None:
    """A flow whose provider cannot serve its kind is a config error naming the provider."""
    config = tmp_path / "c.toml"
    config.write_text(
        f'[providers.{provider}]\napi_key = "k"\n'
        f'[[flows]]\nname = "f"\nkind = "{kind}"\nprovider = "{provider}"\n'
        'tickers = ["X"]\nevery = "1h"\n'
    )
    with pytest.raises(ConfigError, match=problem):
        load_checked(config)


def test_daily_bars_still_default_kind(tmp_path: Path) -> None:
    """A flow without ``kind`` is a daily_bars flow."""
    settings = make_settings(tmp_path, {"yahoo": {}}, tickers=["A"])
    assert settings.flows[0].kind == "daily_bars"


def test_every_flow_kind_is_one_row_some_provider_can_serve() -> None:
    """Each kind's row names itself, needs a capability some provider declares, and says
    whether it has history (all but quotes), gaps (the daily-bar kinds) and market hours."""
    served = {c for cls in PROVIDER_KINDS.values() for c in cls.spec.capabilities}
    assert sorted(FLOW_KINDS) == ["crypto", "daily_bars", "fx", "quotes"]
    for name, row in FLOW_KINDS.items():
        assert row.name == name
        assert row.capability in served
    assert {n for n, row in FLOW_KINDS.items() if row.history is None} == {"quotes"}
    assert {n for n, row in FLOW_KINDS.items() if row.gaps} == {"daily_bars", "crypto"}
    assert {n for n, row in FLOW_KINDS.items() if row.incremental} == {"daily_bars"}
    assert {n for n, row in FLOW_KINDS.items() if row.market_hours} == {"quotes"}
    assert {n for n, row in FLOW_KINDS.items() if row.rates} == {"fx"}


def test_an_unknown_flow_kind_is_refused_naming_the_key(tmp_path: Path) -> None:
    """The loader accepts any kind string; the check names flows.0.kind and the known kinds."""
    config = tmp_path / "c.toml"
    config.write_text(
        '[[flows]]\nname = "f"\nkind = "options"\nprovider = "yahoo"\n'
        'tickers = ["X"]\nevery = "1h"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_checked(config)
    assert info.value.key == "flows.0.kind"
    assert "daily_bars" in info.value.problem
