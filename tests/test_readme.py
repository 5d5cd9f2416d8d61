"""The README's database interface runs: its SQL and pandas examples against a demo DB."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest

import finappd
from finappd.sim import SimConfig, SimServer
from finappd.store import Store

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
LIVE = "/var/lib/finappd/finappd.sqlite3"


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
[store]
path = "{db}"
[providers.yahoo]
base_url = "{sim.url}"
rate = "6000/minute"
[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["AAPL", "MSFT", "^GSPC", "EURUSD=X", "ZZZGONE"]
every = "1h"
lookback_days = 30
""",
                encoding="utf-8",
            )
            for _ in range(3):
                summary = await finappd.run_flow(config, "eod")
                assert summary.status == "partial"

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
