"""SIGHUP reload of a real daemon process: valid configs are applied, invalid ones kept out."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests import procs
from tests.conftest import MakeServer

FLOW = """
[[flows]]
name = "{name}"
provider = "yahoo"
tickers = [{tickers}]
{schedule}
num_workers = 2
"""


def config_text(db: Path, url: str, flows: list[tuple[str, list[str], str]], conc: int = 2) -> str:
    """A config against the simulator with ``(name, tickers, schedule line)`` flows."""
    text = (
        f'grace_period = "2s"\n[store]\npath = "{db}"\n[logging]\nformat = "json"\n'
        f'[providers.yahoo]\nbase_url = "{url}"\nmax_concurrency = {conc}\n'
        'rate = "6000/minute"\n'
    )
    for name, tickers, schedule in flows:
        quoted = ", ".join(f'"{t}"' for t in tickers)
        text += FLOW.format(name=name, tickers=quoted, schedule=schedule)
    return text


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""
    with procs.notify_socket(tmp_path / "notify.sock") as sock:
        yield sock


class DaemonProcess:
    """A ``finappd run`` child: its JSON log events and sd_notify messages as they arrive."""

    def __init__(self, proc: procs.Child, notify: socket.socket) -> None:
        self.proc = proc
        self.notify = notify
        self.events: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def _drain_notes(self) -> None:
        self.notes.extend(procs.received(self.notify))

    async def wait_event(
        self, event: str, where: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> dict[str, Any]:
        """The first log event named ``event`` matching ``where`` (waits up to 20 s)."""
        async with asyncio.timeout(20):
            while True:
                for record in self.events:
                    if record["event"] == event and where(record):
                        return record
                await asyncio.sleep(0.05)

    async def wait_note(self, prefix: str, after: int = 0) -> str:
        """The first notification from index ``after`` on that starts with ``prefix``."""
        async with asyncio.timeout(20):
            while True:
                self._drain_notes()
                for note in self.notes[after:]:
                    if note.startswith(prefix):
                        return note
                await asyncio.sleep(0.05)

    def note_count(self) -> int:
        """How many notifications arrived so far."""
        self._drain_notes()
        return len(self.notes)

    async def stop(self) -> int:
        """SIGTERM, wait, and return the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.proc.wait(), timeout=20)
        await self._reader
        assert self.proc.returncode is not None
        return self.proc.returncode


@asynccontextmanager
async def daemon(config: Path, notify: socket.socket) -> AsyncIterator[DaemonProcess]:
    """Run ``finappd --config CONFIG run`` with a notify socket; always stopped after."""
    proc = await procs.spawn_finappd(
        "--config", str(config), "run", env={"NOTIFY_SOCKET": notify.getsockname()}
    )
    running = DaemonProcess(proc, notify)
    try:
        yield running
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def runs(db: Path) -> list[tuple[str, str, int]]:
    """``(flow, status, tickers_total)`` of every finished run, oldest first."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT flow, status, tickers_total FROM runs WHERE status != 'running' ORDER BY id"
        ).fetchall()


async def test_valid_reload_adds_reschedules_and_removes_flows(
    tmp_path: Path, sim_server: MakeServer, notify_socket: socket.socket
) -> None:
    """A valid new config adds, reschedules (with new tickers) and removes flows; STATUS follows."""
    sim = await sim_server()
    assert sim.url is not None
    db, config = tmp_path / "d.sqlite3", tmp_path / "finappd.toml"
    config.write_text(
        config_text(db, sim.url, [("eod", ["AAPL", "MSFT"], 'every = "1h"')]), encoding="utf-8"
    )
    async with daemon(config, notify_socket) as d:
        await d.wait_note("READY=1")
        await d.wait_event("run.finished", lambda e: e["flow"] == "eod")

        config.write_text(
            config_text(
                db,
                sim.url,
                [
                    ("eod", ["AAPL", "MSFT", "^GSPC"], 'every = "2s"'),
                    ("fx", ["EURUSD=X"], 'cron = "0 3 * * *"'),
                ],
                conc=3,
            ),
            encoding="utf-8",
        )
        mark = d.note_count()
        d.proc.send_signal(signal.SIGHUP)
        reloaded = await d.wait_event("config.reloaded")
        assert reloaded["flows_added"] == ["fx"]
        assert reloaded["flows_rescheduled"] == ["eod"]
        assert reloaded["providers_changed"] == ["yahoo"]
        assert reloaded["restart_needed"] == []
        assert set(reloaded["next_fires"]) == {"eod", "fx"}
        assert (await d.wait_note("RELOADING=1", mark)).startswith("RELOADING=1\nMONOTONIC_USEC=")
        ready = await d.wait_note("READY=1", mark)
        assert "fx: waiting, next" in ready
        await d.wait_event("provider.reconfigured")
        # The rescheduled flow fires on its new interval, with its new tickers.
        await d.wait_event("run.finished", lambda e: e["flow"] == "eod" and e["tickers_total"] == 3)

        config.write_text(
            config_text(db, sim.url, [("fx", ["EURUSD=X"], 'cron = "0 3 * * *"')]),
            encoding="utf-8",
        )
        d.proc.send_signal(signal.SIGHUP)
        removed = await d.wait_event("config.reloaded", lambda e: e["flows_removed"] == ["eod"])
        assert set(removed["next_fires"]) == {"fx"}
        assert await d.stop() == 0
    assert ("eod", "ok", 3) in runs(db)


async def test_invalid_reload_keeps_the_running_config(
    tmp_path: Path, sim_server: MakeServer, notify_socket: socket.socket
) -> None:
    """An invalid new config logs one error naming the key, changes nothing, and shows in STATUS."""
    sim = await sim_server()
    assert sim.url is not None
    db, config = tmp_path / "d.sqlite3", tmp_path / "finappd.toml"
    good = config_text(db, sim.url, [("eod", ["AAPL"], 'every = "3s"')])
    config.write_text(good, encoding="utf-8")
    async with daemon(config, notify_socket) as d:
        await d.wait_note("READY=1")
        config.write_text(good.replace('every = "3s"', 'cron = "61 * * * *"'), encoding="utf-8")
        mark = d.note_count()
        d.proc.send_signal(signal.SIGHUP)
        failed = await d.wait_event("config.reload_failed")
        assert failed["level"] == "error"
        assert failed["key"] == "flows.0.cron"
        assert "invalid cron expression" in failed["problem"]
        assert failed["kept"] == "previous config"
        ready = await d.wait_note("READY=1", mark)
        assert "STATUS=reload failed, previous config kept: flows.0.cron" in ready
        # The old schedule still runs: eod fires again on its 3 s interval.
        await d.wait_event("run.finished", lambda e: e["flow"] == "eod")
        first = len([r for r in runs(db) if r[0] == "eod"])
        async with asyncio.timeout(15):
            while len([r for r in runs(db) if r[0] == "eod"]) <= first:
                await asyncio.sleep(0.1)

        # A broken TOML file is refused the same way, then a fixed one clears the error.
        config.write_text("[[flows]\n", encoding="utf-8")
        d.proc.send_signal(signal.SIGHUP)
        await d.wait_event("config.reload_failed", lambda e: "TOML syntax error" in e["problem"])
        config.write_text(good, encoding="utf-8")
        mark = d.note_count()
        d.proc.send_signal(signal.SIGHUP)
        await d.wait_event("config.reloaded")
        assert "reload failed" not in await d.wait_note("READY=1", mark)
        assert await d.stop() == 0
    errors = [e for e in d.events if e["level"] == "error"]
    assert [e["event"] for e in errors] == ["config.reload_failed", "config.reload_failed"]
