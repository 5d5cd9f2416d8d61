"""Backfill: chunk planning (pure) and a backfill cancelled half way, resumed without repeats."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from finappd.config import Settings
from finappd.flows.backfill import (
    Chunk,
    Progress,
    chunk_ranges,
    plan_chunks,
    range_days,
    run_backfill,
    todo_chunks,
)
from finappd.providers import PROVIDER_KINDS
from finappd.runtime import Runtime
from finappd.sim import SimConfig
from tests.conftest import MakeServer, one_flow
from tests.procs import spawn_finappd

D = date.fromisoformat


@pytest.mark.parametrize(
    ("start", "end", "days", "expected"),
    [
        ("2024-01-01", "2024-01-10", None, [("2024-01-01", "2024-01-10")]),
        ("2024-01-01", "2024-01-10", 10, [("2024-01-01", "2024-01-10")]),
        (
            "2024-01-01",
            "2024-01-10",
            4,
            [
                ("2024-01-01", "2024-01-04"),
                ("2024-01-05", "2024-01-08"),
                ("2024-01-09", "2024-01-10"),
            ],
        ),
        # month-end and leap day inside a chunk; one-day chunks
        (
            "2024-02-28",
            "2024-03-01",
            1,
            [("2024-02-28",) * 2, ("2024-02-29",) * 2, ("2024-03-01",) * 2],
        ),
        ("2024-01-02", "2024-01-01", 5, []),
        (
            "2023-01-01",
            "2024-12-31",
            365,
            [
                ("2023-01-01", "2023-12-31"),
                ("2024-01-01", "2024-12-30"),
                ("2024-12-31", "2024-12-31"),
            ],
        ),
    ],
)
def test_chunk_ranges(
    start: str, end: str, days: int | None, expected: list[tuple[str, ...]]
) -> None:
    """A range is cut into consecutive inclusive chunks of at most ``days`` days, no gap."""
    got = chunk_ranges(D(start), D(end), days)
    assert got == [(D(a), D(b)) for a, b in expected]


def test_plan_is_stable_and_todo_skips_done_chunks() -> None:
    """Chunks are anchored at the start; done ones are skipped unless their range has grown."""
    plan = plan_chunks(["A", "B"], D("2024-01-01"), D("2024-01-20"), 10)
    assert [c.key for c in plan] == [
        "A 2024-01-01..2024-01-10",
        "A 2024-01-11..2024-01-20",
        "B 2024-01-01..2024-01-10",
        "B 2024-01-11..2024-01-20",
    ]
    done = {("A", D("2024-01-01")): D("2024-01-10"), ("B", D("2024-01-11")): D("2024-01-15")}
    assert todo_chunks(plan, done) == [
        Chunk("A", D("2024-01-11"), D("2024-01-20")),
        Chunk("B", D("2024-01-01"), D("2024-01-10")),
        Chunk("B", D("2024-01-11"), D("2024-01-20")),  # done only to the 15th: grown since
    ]


def test_providers_declare_their_range_and_a_chain_takes_the_smallest() -> None:
    """Providers with a documented per-request history cap declare it as max_range_days."""
    declared = {kind: cls.max_range_days for kind, cls in PROVIDER_KINDS.items()}
    assert declared["yahoo"] == 3650
    assert declared["coingecko"] == 365
    assert declared["polygon"] == 730
    assert declared["alphavantage"] == 100
    assert declared["twelvedata"] == 5000

    class _P:
        def __init__(self, days: int | None) -> None:
            self.max_range_days = days

    assert range_days([_P(None), _P(365), _P(3650)]) == 365  # type: ignore[list-item]
    assert range_days([_P(None)]) is None  # type: ignore[list-item]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_figures_and_tty_line() -> None:
    """Progress reports done/total, rate and ETA; a TTY gets one carriage-returned line."""
    tty = _Tty()
    progress = Progress(10, 4, stream=tty)
    progress.tick(True)
    progress.tick(False)
    figures = progress.figures()
    assert (figures["done"], figures["total"], figures["failed"]) == (5, 10, 1)
    assert tty.getvalue().startswith("\rbackfill 5/10 chunks, 0 failed")
    assert "\rbackfill 5/10 chunks, 1 failed" in tty.getvalue()
    assert Progress(3, 0, stream=io.StringIO()).stream is None  # not a terminal: no line


def settings_for(tmp_path: Path, url: str, tickers: list[str], **flow: Any) -> Settings:
    """One Yahoo daily_bars flow against the simulator, one request at a time."""
    provider = {"base_url": url, "max_concurrency": 1, "rates": [], "backoff": "1ms"}
    return one_flow(tmp_path / "f.sqlite3", "yahoo", provider, tickers, **flow)


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the DB as a reader would."""
    with sqlite3.connect(f"file:{tmp_path / 'f.sqlite3'}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


async def backfill(runtime: Runtime, start: date, end: date, chunk_days: int) -> Any:
    """Backfill flow ``eod`` with the provider's range narrowed to ``chunk_days``."""
    flow = runtime.settings.flow("eod")
    provider = runtime.providers["yahoo"]
    setattr(provider, "max_range_days", chunk_days)  # noqa: B010 - a ClassVar, narrowed per test
    return await run_backfill(
        flow="eod",
        kind=flow.kind,
        tickers=flow.tickers,
        start=start,
        end=end,
        providers=[provider],
        store=runtime.store,
        writer=runtime.writer,
        num_workers=1,
        progress_every=0.05,
    )


async def test_backfill_cancelled_half_way_resumes_only_the_missing_chunks(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A backfill cancelled after a few chunks re-requests exactly the chunks not yet done."""
    sim = await sim_server(SimConfig(latency=0.02))
    assert sim.url is not None
    tickers = ["AAA", "BBB", "CCC"]
    start, end = D("2024-01-01"), D("2024-06-28")  # 180 days: 6 chunks of 30 per ticker
    total = 18
    settings = settings_for(tmp_path, sim.url, tickers)
    async with Runtime(settings) as runtime:
        task = asyncio.create_task(backfill(runtime, start, end, 30))
        while sim.stats.requests < 7:
            await asyncio.sleep(0.002)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    done = query(tmp_path, "SELECT COUNT(*) FROM backfill_chunks WHERE status = 'done'")[0][0]
    assert 6 <= done < total
    sim.reset()
    with capture_logs() as logs:
        async with Runtime(settings) as runtime:
            summary = await backfill(runtime, start, end, 30)
    assert summary.status == "ok"
    assert summary.tickers_total == total - done
    assert sim.stats.requests == total - done  # finished chunks were not asked again
    statuses = query(tmp_path, "SELECT status, COUNT(*) FROM backfill_chunks GROUP BY status")
    assert statuses == [("done", total)]
    weekdays = 130  # 2024-01-01..2024-06-28, Mon-Fri (the simulator has no holidays)
    counts = query(tmp_path, "SELECT symbol, COUNT(*) FROM bars GROUP BY symbol")
    assert counts == [(t, weekdays) for t in tickers]
    started = [e for e in logs if e["event"] == "backfill.started"]
    assert started[0]["already_done"] == done
    final = [e for e in logs if e["event"] == "backfill.progress"][-1]
    assert (final["done"], final["total"]) == (total, total)
    assert {"eta_s", "rate_per_s"} <= final.keys()
    # A third run has nothing left to ask.
    sim.reset()
    async with Runtime(settings) as runtime:
        summary = await backfill(runtime, start, end, 30)
    assert (summary.tickers_total, sim.stats.requests) == (0, 0)


async def test_failed_chunks_are_marked_and_retried(tmp_path: Path, sim_server: MakeServer) -> None:
    """A chunk the provider refuses is marked failed, and the next backfill asks for it again."""
    sim = await sim_server(SimConfig(unknown_symbols=frozenset({"BAD"})))
    assert sim.url is not None
    settings = settings_for(tmp_path, sim.url, ["GOOD", "BAD"])
    async with Runtime(settings) as runtime:
        summary = await backfill(runtime, D("2024-01-01"), D("2024-02-29"), 30)
    assert summary.status == "partial"
    rows = query(tmp_path, "SELECT symbol, status FROM backfill_chunks ORDER BY symbol, start")
    assert rows == [("BAD", "failed")] * 2 + [("GOOD", "done")] * 2
    sim.reset()
    async with Runtime(settings) as runtime:
        await backfill(runtime, D("2024-01-01"), D("2024-02-29"), 30)
    assert sim.stats.requests == 2


async def test_cli_backfill_killed_with_sigkill_resumes(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """``finappd backfill`` killed by SIGKILL mid-way asks, when re-run, only for the rest."""
    sim = await sim_server(SimConfig(latency=0.05))
    assert sim.url is not None
    tickers = [f"K{i:02d}" for i in range(16)]  # one chunk each: Yahoo takes 10 years a call
    config = tmp_path / "finappd.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "f.sqlite3"}"\n'
        f'[providers.yahoo]\nbase_url = "{sim.url}"\nmax_concurrency = 1\nrates = []\n'
        f'[[flows]]\nname = "eod"\nprovider = "yahoo"\nevery = "1h"\nnum_workers = 1\n'
        f"tickers = {tickers!r}\n".replace("'", '"')
    )
    args = ["--config", str(config), "backfill", "eod", "--start", "2024-01-01"]
    args += ["--end", "2024-03-31"]
    child = await spawn_finappd(*args)
    while sim.stats.requests < 5:
        await asyncio.sleep(0.005)
    child.kill()
    await child.wait()
    done = query(tmp_path, "SELECT COUNT(*) FROM backfill_chunks WHERE status = 'done'")[0][0]
    assert 3 <= done < len(tickers)
    await asyncio.sleep(0.1)  # let the killed child's last request finish on the server
    sim.reset()
    child = await spawn_finappd(*args)
    out, _ = await child.communicate()
    assert child.returncode == 0
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["tickers_total"] == len(tickers) - done
    assert sim.stats.requests == len(tickers) - done
    assert query(tmp_path, "SELECT DISTINCT status FROM backfill_chunks") == [("done",)]
