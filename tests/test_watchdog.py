"""sd_notify from a real daemon process: READY, STATUS, and WATCHDOG pings that stop when the
event loop is blocked."""

from __future__ import annotations

import asyncio
import itertools
import signal
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from finappd.sim import SimConfig
from tests.conftest import MakeServer
from tests.procs import Child, blocked_span, spawn_stallable

CONFIG = """
[store]
path = "{db}"
[providers.yahoo]
base_url = "{url}"
rate = "100000/minute"
[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["AAPL", "MSFT", "^GSPC"]
every = "1h"
"""

BLOCK_S = 2.0
WATCHDOG_USEC = 1_000_000  # pings expected every 0.5 s


class Listener:
    """systemd's side of ``$NOTIFY_SOCKET``: a thread stamping every datagram as it arrives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[tuple[float, str]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="notify-listener")
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.time(), data.decode()))

    def close(self) -> None:
        """Stop the thread and close the socket."""
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def pings(self) -> list[float]:
        """Arrival times of ``WATCHDOG=1``."""
        return [t for t, m in list(self.messages) if m == "WATCHDOG=1"]

    def texts(self) -> list[str]:
        """Every message, in arrival order."""
        return [m for _, m in list(self.messages)]

    async def wait(self, condition: str, count: int = 1) -> None:
        """Wait until ``count`` messages starting with ``condition`` have arrived."""
        async with asyncio.timeout(60):
            while sum(m.startswith(condition) for m in self.texts()) < count:
                await asyncio.sleep(0.02)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    """A notify socket listener that is always closed."""
    sock = Listener(tmp_path / "notify.sock")
    yield sock
    sock.close()


async def start_child(tmp_path: Path, url: str, env: dict[str, str]) -> tuple[Child, Path]:
    """Start the daemon under the blocking harness; return it and its block marker file."""
    config = tmp_path / "finappd.toml"
    config.write_text(CONFIG.format(db=tmp_path / "w.sqlite3", url=url), encoding="utf-8")
    marker = tmp_path / "blocked"
    proc = await spawn_stallable(config, BLOCK_S, marker, env, stdout=asyncio.subprocess.DEVNULL)
    return proc, marker


async def stop_child(proc: Child) -> None:
    """SIGTERM the daemon and require a clean exit."""
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()


@pytest.mark.timeout(180)
async def test_watchdog_pings_at_half_the_interval_and_stop_while_the_loop_is_blocked(
    tmp_path: Path, sim_server: MakeServer, listener: Listener
) -> None:
    """With WATCHDOG_USEC set, READY=1 comes with a STATUS, WATCHDOG=1 every half interval,
    none while the event loop is blocked, and they resume when it is free again."""
    sim = await sim_server(SimConfig())
    assert sim.url is not None
    env = {"NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    proc, marker = await start_child(tmp_path, sim.url, env)
    try:
        await listener.wait("READY=1")
        await listener.wait("WATCHDOG=1", count=6)
        before = listener.pings()
        proc.send_signal(signal.SIGUSR1)
        blocked_from, blocked_until = await blocked_span(marker)
        count = len(listener.pings())
        await listener.wait("WATCHDOG=1", count=count + 3)
    finally:
        if proc.returncode is None:
            await stop_child(proc)
    texts = listener.texts()
    assert texts[0].startswith("READY=1\nSTATUS=")
    assert texts.index(next(t for t in texts if t == "WATCHDOG=1")) > 0
    assert any(t.startswith("STOPPING=1") for t in texts)
    gaps = [b - a for a, b in itertools.pairwise(before)]
    half = WATCHDOG_USEC / 2e6
    assert half * 0.8 <= statistics.median(gaps) <= half * 1.5, gaps
    pings = listener.pings()
    # Datagrams are stamped on arrival by a thread; allow for its scheduling on a busy box.
    during = [t for t in pings if blocked_from + 0.25 < t < blocked_until]
    assert during == [], (blocked_from, blocked_until, during)
    longest = max(b - a for a, b in itertools.pairwise(pings))
    assert longest >= BLOCK_S * 0.9
    assert sum(t > blocked_until for t in pings) >= 3


@pytest.mark.parametrize(
    "env",
    [{}, {"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}, {"WATCHDOG_USEC": "0"}],
    ids=["no-watchdog", "watchdog-for-another-pid", "watchdog-disabled"],
)
async def test_no_watchdog_pings_unless_asked_for_this_process(
    tmp_path: Path, sim_server: MakeServer, listener: Listener, env: dict[str, str]
) -> None:
    """Without WATCHDOG_USEC, with it meant for another PID, or zero: READY=1 and STATUS but
    never WATCHDOG=1."""
    sim = await sim_server(SimConfig())
    assert sim.url is not None
    proc, _ = await start_child(tmp_path, sim.url, {"NOTIFY_SOCKET": str(listener.path), **env})
    try:
        await listener.wait("READY=1")
        await listener.wait("STATUS=")  # the first run finished and was reported
        await asyncio.sleep(1.0)  # five would-be ping intervals
    finally:
        await stop_child(proc)
    assert "WATCHDOG=1" not in listener.texts()
