"""Network down at start, against a real daemon: READY anyway, each run fails with the reason,
and the daemon recovers by itself once the provider answers again."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
from pathlib import Path

import pytest

from finappd.sim import SimServer
from tests.procs import DaemonLog, notify_socket, received, spawn_finappd

CONFIG = """
[store]
path = "{db}"
[logging]
format = "json"
[providers.yahoo]
base_url = "http://127.0.0.1:{port}"
rate = "100000/minute"
connect_timeout = "300ms"
read_timeout = "2s"
retries = 1
backoff = "10ms"
circuit_threshold = 10
circuit_cooldown = "1s"
[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["AAPL", "MSFT", "^GSPC"]
every = "1s"
deadline = "900ms"
"""


def free_port() -> int:
    """A loopback port nothing listens on (the kernel's pick, released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def runs_and_errors(db: Path) -> tuple[list[tuple[int, str, int]], dict[int, set[str]]]:
    """Runs as (id, status, tickers_ok), and each run's fetch_errors kinds."""
    if not db.exists():
        return [], {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        runs = conn.execute("SELECT id, status, tickers_ok FROM runs ORDER BY id").fetchall()
        kinds: dict[int, set[str]] = {}
        for run_id, kind in conn.execute("SELECT run_id, kind FROM fetch_errors"):
            kinds.setdefault(run_id, set()).add(kind)
    return runs, kinds


async def wait_until_runs(db: Path, enough: int, ok: bool) -> list[tuple[int, str, int]]:
    """Poll until ``enough`` finished runs exist (``ok``: and the last one is ok with 3 tickers)."""
    async with asyncio.timeout(60):
        while True:
            runs, _ = runs_and_errors(db)
            done = [r for r in runs if r[1] != "running"]
            if len(done) >= enough and (not ok or done[-1][1:] == ("ok", 3)):
                return done
            await asyncio.sleep(0.1)


@pytest.mark.timeout(120)
async def test_daemon_started_with_the_network_down_reports_ready_fails_runs_and_recovers(
    tmp_path: Path,
) -> None:
    """Nothing listening at the provider's address: READY=1 still comes, runs are failed with
    connection errors, and once a server answers on that port a later run is ok with every
    ticker, with no restart."""
    port = free_port()
    db = tmp_path / "n.sqlite3"
    config = tmp_path / "finappd.toml"
    config.write_text(CONFIG.format(db=db, port=port), encoding="utf-8")
    sim: SimServer | None = None
    with notify_socket(tmp_path / "notify.sock") as sock:
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
        proc = await spawn_finappd("--config", str(config), "run", env=env)
        try:
            assert proc.stdout is not None
            log = DaemonLog(proc.stdout)
            await log.wait_for("daemon.ready")
            messages = received(sock)
            failed = await wait_until_runs(db, 3, ok=False)
            sim = SimServer(port=port)
            await sim.start()
            await wait_until_runs(db, len(failed) + 1, ok=True)
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                await log.drain()
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            if sim is not None:
                await sim.stop()
    assert proc.returncode == 0
    assert any(m.startswith("READY=1") for m in messages), messages
    runs, kinds = runs_and_errors(db)
    assert [status for _, status, _ in failed] == ["failed"] * len(failed)
    assert kinds[failed[0][0]] == {"connection"}  # the first run met the closed port itself
    # Later runs may be refused by the open circuit breaker instead; each says why.
    assert all(kinds[run_id] <= {"connection", "unavailable"} for run_id, _, _ in failed)
    assert runs[-1][1:] == ("ok", 3)
    failures = [e for e in log.events if e["event"] == "run.finished" and e["status"] == "failed"]
    assert len(failures) >= len(failed)
    assert sum(e["event"] == "daemon.ready" for e in log.events) == 1  # never restarted
