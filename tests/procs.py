"""Helpers for tests that drive real finappd processes against the simulator and a real DB.

Checking "every ticker's batch is fully present or absent" needs the truth: the
simulator's prices are a pure function of (symbol, day), so the bars a run should
have stored for a ticker are known exactly, up to which of today's sessions had
opened when it was fetched.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from finappd.sim.exchanges import listing_of
from finappd.sim.prices import SimBar, bar_on, symbol_key, synthetic_bars
from finappd.sim.yahoo import session_open

__all__ = [
    "STALLABLE_DAEMON",
    "DaemonLog",
    "ForkedCli",
    "assert_batches_whole",
    "blocked_span",
    "fork_finappd",
    "integrity",
    "notify_socket",
    "received",
    "spawn_finappd",
    "spawn_stallable",
]

#: Children forked from a server that has imported finappd once: a real process each, minus
#: the second or two a fresh interpreter spends importing (which touches no file).
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(["finappd.cli", "finappd.runtime", "tests.procs"])

#: The daemon as `finappd run` starts it (logging JSON at the config's level), plus a
#: test-only SIGUSR1 handler that blocks the event loop (as a stuck call would) for argv[2]
#: seconds and writes to the marker file argv[3] when the block started and ended.
STALLABLE_DAEMON = """
import asyncio, signal, sys, time
from pathlib import Path
from finappd.config import load_settings
from finappd.logging import configure_logging
from finappd.scheduler import Daemon

def block(seconds, marker):
    Path(marker).write_text(f"{time.time()}\\n")
    time.sleep(seconds)
    with open(marker, "a") as f:
        f.write(f"{time.time()}\\n")

async def main():
    settings = load_settings(Path(sys.argv[1]))
    configure_logging(settings.logging.level, "json")
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, block, float(sys.argv[2]), sys.argv[3])
    return await Daemon(settings).run()

raise SystemExit(asyncio.run(main()))
"""


@contextmanager
def notify_socket(path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's ``$NOTIFY_SOCKET``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def received(sock: socket.socket) -> list[str]:
    """Every notification waiting on ``sock``."""
    messages: list[str] = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


async def spawn_finappd(
    *args: str, env: dict[str, str] | None = None, stdout: int | None = None
) -> asyncio.subprocess.Process:
    """Start ``python -m finappd ARGS`` as a child process (stdout piped unless given)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "finappd",
        *args,
        stdout=asyncio.subprocess.PIPE if stdout is None else stdout,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def _cli_child(argv: list[str], output: str) -> None:
    """A forked child's body: ``finappd ARGV``, stdout and stderr to ``output``."""
    from finappd import cli

    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)  # sys.stdout and sys.stderr write to fds 1 and 2: now the file
    code = cli.main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class ForkedCli:
    """``finappd ARGS`` in a process forked from a preloaded server (see :func:`fork_finappd`)."""

    def __init__(self, args: Sequence[str], output: Path) -> None:
        self.output = output
        self._process = _FORKS.Process(target=_cli_child, args=(list(args), str(output)))
        self._process.start()

    def __repr__(self) -> str:
        return f"<ForkedCli pid={self._process.pid} returncode={self.returncode}>"

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: the signal that ended it), or None while it runs."""
        return self._process.exitcode

    def kill(self) -> None:
        """SIGKILL it."""
        self._process.kill()

    async def wait(self) -> int:
        """Wait for it to end (its sentinel becomes readable); return its exit code."""
        if self.returncode is None:
            loop = asyncio.get_running_loop()
            ended: asyncio.Future[None] = loop.create_future()
            sentinel = self._process.sentinel

            def readable() -> None:  # called again until removed: set the result once
                if not ended.done():
                    ended.set_result(None)

            loop.add_reader(sentinel, readable)
            try:
                await ended
            finally:
                loop.remove_reader(sentinel)
        code = self._process.exitcode
        assert code is not None
        return code

    def close(self) -> None:
        """Release the handle of the process, which has ended."""
        self._process.close()

    def read_output(self) -> str:
        """What it wrote to stdout and stderr."""
        return self.output.read_text(encoding="utf-8", errors="replace")


def fork_finappd(*args: str, output: Path) -> ForkedCli:
    """Start ``finappd ARGS`` as a child process forked from a server that has already
    imported finappd (the first call starts that server); its output goes to ``output``."""
    return ForkedCli(args, output)


async def spawn_stallable(
    config: Path,
    block_s: float,
    marker: Path,
    env: dict[str, str] | None = None,
    stdout: int | None = None,
) -> asyncio.subprocess.Process:
    """Start :data:`STALLABLE_DAEMON` on ``config``; SIGUSR1 blocks its loop ``block_s``."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        STALLABLE_DAEMON,
        str(config),
        str(block_s),
        str(marker),
        stdout=asyncio.subprocess.PIPE if stdout is None else stdout,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def _stamps(marker: Path) -> list[float]:
    """The times written to ``marker`` so far (none if it does not exist yet)."""
    return [float(t) for t in marker.read_text().split()] if marker.exists() else []


async def blocked_span(marker: Path, within: float = 60) -> tuple[float, float]:
    """When the loop block recorded in ``marker`` started and ended (waits for its end)."""
    async with asyncio.timeout(within):
        while len(stamps := _stamps(marker)) < 2:
            await asyncio.sleep(0.05)
    return stamps[0], stamps[1]


class DaemonLog:
    """JSON log lines of a child process read as they come, for waiting on events."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self.events: list[dict[str, Any]] = []

    async def wait_for(
        self, event: str, within: float = 60, after: int = 0, **fields: Any
    ) -> dict[str, Any]:
        """The first line from index ``after`` on (read or coming) with ``event`` and ``fields``."""

        def match(line: dict[str, Any]) -> bool:
            return line.get("event") == event and all(line.get(k) == v for k, v in fields.items())

        for line in self.events[after:]:
            if match(line):
                return line
        async with asyncio.timeout(within):
            while True:
                raw = await self.stream.readline()
                if not raw:
                    raise EOFError(f"the process ended before logging {event} {fields}")
                event_dict: dict[str, Any] = json.loads(raw)
                self.events.append(event_dict)
                if match(event_dict):
                    return event_dict

    async def drain(self) -> list[dict[str, Any]]:
        """Read the rest of the output (the process has ended or is ending)."""
        async for raw in self.stream:
            self.events.append(json.loads(raw))
        return self.events


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` of ``db``, opened as any other program would."""
    with sqlite3.connect(db) as conn:
        [(result,)] = conn.execute("PRAGMA integrity_check").fetchall()
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    return str(result)


Row = tuple[Any, ...]


def _row(bar: SimBar) -> Row:
    return (bar.day.isoformat(), bar.open, bar.high, bar.low, bar.close, bar.adj_close, bar.volume)


def _one_batch(
    symbol: str,
    got: list[Row],
    end: date,
    lookback_days: int,
    seeds: Sequence[int],
    fetched_from: float,
    fetched_until: float,
) -> bool:
    """Whether ``got`` is one whole fetch of the window ending ``end`` (plus whole older rows)."""
    start = end - timedelta(days=lookback_days)
    inside = [r for r in got if start.isoformat() <= r[0] <= end.isoformat()]
    older = [r for r in got if r[0] < start.isoformat()]
    if not inside or len(inside) + len(older) != len(got):
        return False
    listing = listing_of(symbol)
    for seed in seeds:
        key = symbol_key(symbol, seed)
        if _row(bar_on(key, date.fromisoformat(inside[0][0]))) != inside[0]:
            continue
        # The simulator serves a day once its session has opened: sure if before the fetch.
        bars = [
            b
            for b in synthetic_bars(symbol, start, end, seed=seed)
            if session_open(b.day, listing) <= fetched_until
        ]
        sure = sum(session_open(b.day, listing) <= fetched_from for b in bars)
        if len(inside) >= sure and inside == [_row(b) for b in bars[: len(inside)]]:
            break
    else:
        return False
    # Rows before the window (a run on an earlier UTC day) must be whole bars of some seed.
    return all(
        any(_row(bar_on(symbol_key(symbol, s), date.fromisoformat(r[0]))) == r for s in seeds)
        for r in older
    )


def assert_batches_whole(
    db: Path,
    lookback_days: int,
    fetched_from: float,
    fetched_until: float | None = None,
    *,
    seeds: Sequence[int] = (0,),
    symbols: Sequence[str] | None = None,
) -> dict[str, int]:
    """Every ticker in ``bars`` holds one whole fetch: the simulator's bars of one lookback
    window of a UTC-timezone flow, value for value, all from one of ``seeds``.

    ``fetched_from``/``fetched_until`` bound when the fetches happened (epoch seconds); a
    day whose session opened in between may or may not be in a batch. Returns rows per symbol.
    """
    until = time.time() if fetched_until is None else fetched_until
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT symbol, ts, open, high, low, close, adj_close, volume FROM bars "
            "WHERE interval = '1d' ORDER BY symbol, ts"
        ).fetchall()
    stored: dict[str, list[Row]] = {}
    for symbol, *rest in rows:
        stored.setdefault(symbol, []).append(tuple(rest))
    if symbols is not None:
        assert set(stored) <= set(symbols), set(stored) - set(symbols)
    ends = sorted({datetime.fromtimestamp(t, UTC).date() for t in (fetched_from, until)})
    for symbol, got in stored.items():
        assert any(
            _one_batch(symbol, got, end, lookback_days, seeds, fetched_from, until) for end in ends
        ), f"{symbol}: stored rows are not one whole batch: {got}"
    return {symbol: len(got) for symbol, got in stored.items()}
