"""The benchmark scripts stay runnable: each one, at tiny N, exits 0 and prints its figures.

Nothing here looks at a timing: CI machines are too noisy for that, and the
figures are for people (bench/README.md). All five scripts start at once and run
side by side, so the module takes about as long as the slowest one (a few seconds).
Also here: the simulator's answer cache, which the benchmarks rely on, changes no answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from finappd.sim import SimConfig
from finappd.sim.yahoo import chart_body, chart_response
from tests.pg import PgServer

ROOT = Path(__file__).resolve().parent.parent

#: Script → the figure lines (by prefix) its ``--quick`` run must print.
FIGURES = {
    "fanout": ("fanout n=200 ",),
    "engine": ("engine part=engine-only n=200 ", "engine part=end-to-end n=200 "),
    "upsert": ("upsert path=raw ", "upsert path=write_bars ", "upsert path=run-writer "),
    "idle": (
        "idle process=python-asyncio ",
        "idle process=finappd-run ",
        "idle process=finappd-restart ",
    ),
    "memory": ("memory n=1 ", "memory n=500 ", "memory growth_bytes_per_ticker="),
}


@pytest.fixture(scope="module")
def quick_runs() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Every bench script started at once with ``--quick``; killed if a test left it running."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--quick"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for name in FIGURES
    }
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_bench_script_exits_zero_and_prints_its_figures(
    name: str, quick_runs: dict[str, subprocess.Popen[str]]
) -> None:
    """``python bench/<name>.py --quick`` exits 0 and prints every figure line it promises."""
    proc = quick_runs[name]
    out, err = proc.communicate(timeout=100)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    for prefix in FIGURES[name]:
        assert any(line.startswith(prefix) for line in lines), f"no {prefix!r} line in:\n{out}"


def test_upsert_bench_runs_its_postgresql_paths(pg_server: PgServer) -> None:
    """``bench/upsert.py --pg-url`` adds the three paths on PostgreSQL."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "upsert.py"),
            "--quick",
            "--pg-url",
            pg_server.base_url,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=100,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for path in ("raw", "write_bars", "run-writer"):
        assert f"upsert backend=postgresql path={path} rows=2000 " in proc.stdout, proc.stdout


def test_every_bench_script_is_covered() -> None:
    """Each script in bench/ (not the shared ``_common``) has its figure lines listed here."""
    scripts = {p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_")}
    assert scripts == set(FIGURES)


_NOW = datetime(2026, 3, 9, 15, 0, tzinfo=UTC).timestamp()  # a Monday, NY open since 13:30Z


def _query(start: datetime, days: int, **extra: str) -> dict[str, str]:
    period1 = int(start.timestamp())
    return {"period1": str(period1), "period2": str(period1 + days * 86400), **extra}


@pytest.mark.parametrize(
    "query",
    [
        _query(datetime(2026, 2, 25, tzinfo=UTC), 13, interval="1d"),  # to tomorrow, like finappd
        _query(datetime(2025, 6, 1, tzinfo=UTC), 30),  # wholly in the past
        _query(datetime(2026, 3, 7, tzinfo=UTC), 2),  # a weekend: meta only, or crypto bars
        _query(datetime(2026, 4, 1, tzinfo=UTC), 5),  # wholly in the future
        _query(datetime(2024, 1, 1, tzinfo=UTC), 500),  # longer than the cached span (400 days)
        {"range": "5d"},
        {"period1": "1772000000"},  # no period2: up to now
        {"period1": "x", "period2": "1"},
        _query(datetime(2026, 2, 25, tzinfo=UTC), 13, interval="1wk"),
    ],
)
def test_sim_cached_chart_body_is_byte_for_byte_chart_response(query: dict[str, str]) -> None:
    """The simulator's cached answers equal freshly encoded ``chart_response`` at any moment."""
    config = SimConfig(null_symbols=frozenset({"NULL1"}), unknown_symbols=frozenset({"GONE"}))
    symbols = ["AAPL", "BRK-B", "7203.T", "BTC-USD", "EURUSD=X", "^GSPC", "NULL1", "GONE", "ZZZQ"]
    # Before and after New York's and Tokyo's opens, around midnight, the next days.
    for hours in (-14.0, -2.0, -1.4, 0.0, 9.5, 24.0, 48.0, 72.0):
        now = _NOW + hours * 3600
        for seed in (0, 3):
            config.seed = seed
            for symbol in symbols:
                status, body = chart_response(symbol, query, config, now)
                expected = (status, json.dumps(body).encode())
                assert chart_body(symbol, query, config, now) == expected, (symbol, hours)
