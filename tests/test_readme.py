"""The README's database interface runs: its SQL and pandas examples against a demo DB."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from datetime import date
from pathlib import Path

import pytest

import finappd
from finappd.sim import SimConfig, SimServer
from finappd.sim.prices import bar_on, symbol_key
from finappd.store import Store

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
LIVE = "/var/lib/finappd/finappd.sqlite3"
TICKERS = ["AAPL", "MSFT", "^GSPC", "EURUSD=X", "VOD.L", "7203.T", "MC.PA", "0700.HK", "ZZZGONE"]


def section(title: str) -> str:
    """The README text under ``## title``, up to the next ``## `` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def blocks(text: str, lang: str) -> list[str]:
    """The fenced code blocks of language ``lang`` in ``text``."""
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.M | re.S)


SQL = blocks(section("Reading the database"), "sql")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database made by running an eod flow three times against the simulator (one bad ticker)."""
    tmp = tmp_path_factory.mktemp("readme")
    db = tmp / "finappd.sqlite3"

    async def make() -> None:
        async with SimServer(SimConfig()) as sim:
            config = tmp / "finappd.toml"
            config.write_text(
                f"""
base_currency = "USD"
[store]
path = "{db}"
[providers.yahoo]
base_url = "{sim.url}"
rate = "6000/minute"
[providers.frankfurter]
base_url = "{sim.url}/frankfurter/v1"
[[flows]]
name = "eod"
provider = "yahoo"
tickers = {json.dumps(TICKERS)}
every = "1h"
lookback_days = 30
[[flows]]
name = "fx"
kind = "fx"
provider = "frankfurter"
tickers = ["EUR/USD"]
every = "1h"
lookback_days = 30
""",
                encoding="utf-8",
            )
            for _ in range(3):
                summary = await finappd.run_flow(config, "eod")
                assert summary.status == "partial"
            assert (await finappd.run_flow(config, "fx")).status == "ok"

    asyncio.run(make())
    return db


def test_readme_has_the_sql_examples() -> None:
    """The section has sql blocks to run, and shell examples use the read-only flag."""
    assert len(SQL) >= 5
    assert "sqlite3 -readonly" in section("Reading the database")


@pytest.mark.parametrize("sql", SQL, ids=[s.splitlines()[0][3:40] for s in SQL])
def test_sql_example_runs_on_a_demo_db(demo_db: Path, sql: str) -> None:
    """Each README SQL example runs read-only against a real DB and returns rows."""
    conn = sqlite3.connect(f"file:{demo_db}?mode=ro", uri=True)
    try:
        rows = conn.execute(sql).fetchall()
    finally:
        conn.close()
    assert rows, sql


def test_every_table_and_view_is_documented(tmp_path: Path) -> None:
    """Each table and view of a fresh database has a row in the README's table."""
    with Store(tmp_path / "d.sqlite3") as store:
        assert store.schema_version is not None
    conn = sqlite3.connect(tmp_path / "d.sqlite3")
    try:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%'"
            )
        ]
    finally:
        conn.close()
    documented = set(re.findall(r"^\| `(\w+)`", section("Reading the database"), flags=re.M))
    assert set(names) <= documented


def test_base_currency_example_is_what_the_demo_db_answers(demo_db: Path) -> None:
    """The README's latest_close_in_base output shows the simulator's prices: VOD.L's pence
    ÷ 100 in GBP, 7203.T in JPY, MC.PA in EUR, 0700.HK in HKD, as the demo DB gives them."""
    [example] = [b for b in SQL if "FROM latest_close_in_base" in b]
    [shown] = [b for b in blocks(section("Reading the database"), "text") if "close_in_base" in b]
    table = [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in shown.splitlines()
        if line.startswith("│") and "symbol" not in line
    ]
    conn = sqlite3.connect(f"file:{demo_db}?mode=ro", uri=True)
    try:
        rows = conn.execute(example).fetchall()
    finally:
        conn.close()
    assert [(r[0], r[3], r[6]) for r in rows] == [(r[0], r[3], r[6]) for r in table]
    assert [r[3] for r in table] == ["HKD", "JPY", "EUR", "GBP"]
    for symbol, day, close, *_ in table:
        pence = bar_on(symbol_key(symbol, 0), date.fromisoformat(day)).close
        assert float(close) == pytest.approx(pence / (100 if symbol == "VOD.L" else 1))


def test_pandas_example_runs(demo_db: Path) -> None:
    """The pandas example, pointed at the demo DB, builds a wide table of closes."""
    pytest.importorskip("pandas")
    [code] = blocks(section("Reading the database"), "python")[:1]
    scope: dict[str, object] = {}
    exec(code.replace(LIVE, str(demo_db)).replace("2026-01-01", "2000-01-01"), scope)  # noqa: S102
    wide = scope["wide"]
    assert {"AAPL", "MSFT"} <= set(wide.columns)  # type: ignore[attr-defined]


def test_install_guide_names_files_that_exist() -> None:
    """Every repository file the install guide installs is in the repository."""
    guide = section("Install as a service")
    paths = set(re.findall(r"\b(deploy/[\w./-]+)", guide))
    assert {"deploy/systemd/finappd.service", "deploy/systemd/finappd.sysusers"} <= paths
    for path in paths:
        assert (ROOT / path.rstrip("/.")).exists(), path


def test_readme_links_the_architecture_and_only_files_in_the_repository() -> None:
    """The README links docs/ARCHITECTURE.md, and every file it points at is in the repository
    (a pointer outside it, like a design note next to the checkout, would dangle)."""
    assert "(docs/ARCHITECTURE.md)" in README
    assert (ROOT / "docs" / "ARCHITECTURE.md").is_file()
    links = re.findall(r"\]\(([^)#]+?)\)", README)
    named = re.findall(r"see `([\w./-]+\.md)`", README)
    local = [link for link in links + named if "://" not in link]
    assert local
    for link in local:
        assert not Path(link).is_absolute(), link
        assert (ROOT / link).resolve().is_relative_to(ROOT), link
        assert (ROOT / link).exists(), link
