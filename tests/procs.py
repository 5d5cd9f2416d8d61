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
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from multiprocessing import reduction
from pathlib import Path
from typing import Any

from finappd.sim.exchanges import listing_of
from finappd.sim.prices import SimBar, bar_on, symbol_key, synthetic_bars
from finappd.sim.yahoo import session_open

__all__ = [
    "Child",
    "DaemonLog",
    "assert_batches_whole",
    "blocked_span",
    "exec_finappd",
    "integrity",
    "notify_socket",
    "received",
    "run_daemon",
    "spawn_finappd",
    "spawn_main",
    "spawn_stallable",
]

#: Children forked from a server that has imported finappd once (:mod:`tests.preload`): a
#: real process each (its own pid, signals, exit code, file descriptors), minus the second
#: or so of CPU a fresh interpreter spends importing and filling first-use caches, which
#: touches no file. Tests of the real entry point (``python -m finappd``, the systemd
#: unit, the import graph) still start fresh interpreters (:func:`exec_finappd`).
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(["tests.preload", "tests.procs"])


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


def run_daemon(config: Path, handlers: Mapping[signal.Signals, Callable[[], None]]) -> int:
    """The daemon as ``finappd run --config CONFIG`` starts it (logging JSON at the config's
    level), plus test-only ``handlers`` of signals, run on its event loop."""
    from finappd.config import load_settings
    from finappd.logging import configure_logging
    from finappd.scheduler import Daemon

    async def main() -> int:
        settings = load_settings(config)
        configure_logging(settings.logging.level, "json")
        loop = asyncio.get_running_loop()
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
        return await Daemon(settings).run()

    return asyncio.run(main())


def _stallable(argv: list[str]) -> int:
    """:func:`run_daemon` on ARGV[0] with a SIGUSR1 handler that blocks the event loop (as a
    stuck call would) for ARGV[1] seconds and writes to the marker file ARGV[2] when the
    block started and ended."""

    def block() -> None:
        marker = Path(argv[2])
        marker.write_text(f"{time.time()}\n")
        time.sleep(float(argv[1]))
        with marker.open("a") as f:
            f.write(f"{time.time()}\n")

    return run_daemon(Path(argv[0]), {signal.SIGUSR1: block})


def _cli(argv: list[str]) -> int:
    """``finappd ARGV``."""
    from finappd import cli

    return cli.main(argv)


class _Fd:
    """A file descriptor handed to the forked child (the server passes it over its socket)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Callable[[Any], int], tuple[Any]]:
        return _inherited, (reduction.DupFd(self.fd),)


def _inherited(dup: Any) -> int:
    fd: int = dup.detach()
    return fd


def _child(
    main: Callable[[list[str]], int],
    argv: list[str],
    env: dict[str, str],
    cwd: str,
    stdout: int,
    stderr: int,
) -> None:
    """A forked child's body: the caller's environment and directory, then ``main(argv)``
    with stdout and stderr on the given descriptors, exiting with its code."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, target in ((stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
        os.close(fd)
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Child:
    """A forked child (see :func:`spawn_finappd`), used as :class:`asyncio.subprocess.Process`
    is: ``stdout``/``stderr`` stream readers when piped, ``wait``, ``communicate``, signals."""

    def __init__(
        self,
        process: multiprocessing.process.BaseProcess,
        stdout: asyncio.StreamReader | None,
        stderr: asyncio.StreamReader | None,
    ) -> None:
        assert process.pid is not None  # started
        self._process = process
        self.pid: int = process.pid
        self.stdout = stdout
        self.stderr = stderr
        self._code: int | None = None

    def __repr__(self) -> str:
        return f"<Child pid={self.pid} returncode={self.returncode}>"

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: the signal that ended it), or None while it runs. Once
        it is known, the process handle is released (its sentinel closed)."""
        if self._code is None:
            self._code = self._process.exitcode
            if self._code is not None:
                self._process.close()
        return self._code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

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
        code = self.returncode
        assert code is not None
        return code

    async def communicate(self) -> tuple[bytes, bytes]:
        """Read stdout and stderr to their ends, wait for the exit; return what was read."""

        async def read(stream: asyncio.StreamReader | None) -> bytes:
            return b"" if stream is None else await stream.read()

        out, err = await asyncio.gather(read(self.stdout), read(self.stderr))
        await self.wait()
        return out, err


async def _reader(fd: int) -> asyncio.StreamReader:
    """A stream reader on the read end ``fd`` of a pipe (closed at its end of file)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(fd, "rb", buffering=0)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return reader


def _child_end(how: int) -> int:
    """The descriptor a child writes to for ``how``: ``asyncio.subprocess.DEVNULL`` or a
    descriptor of the caller's (duplicated: the caller keeps its own)."""
    return os.open(os.devnull, os.O_WRONLY) if how == asyncio.subprocess.DEVNULL else os.dup(how)


async def spawn_main(
    main: Callable[[list[str]], int],
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
) -> Child:
    """Start ``main(argv)`` as a child process forked from the preloaded server (``main``: a
    module-level function, found by name there). stdout and stderr are piped unless given:
    a descriptor, ``asyncio.subprocess.DEVNULL`` or (stderr) ``STDOUT``."""
    readers: list[asyncio.StreamReader | None] = []
    given: list[int] = []  # the child's ends, closed here once it has its copies
    for how in (stdout, stderr):
        if how == asyncio.subprocess.STDOUT:
            readers.append(None)
            given.append(os.dup(given[0]))
        elif how is None:
            r, w = os.pipe()
            readers.append(await _reader(r))
            given.append(w)
        else:
            readers.append(None)
            given.append(_child_end(how))
    process = _FORKS.Process(
        target=_child,
        args=(main, list(argv), {**os.environ, **(env or {})}, os.getcwd(), *map(_Fd, given)),
    )
    try:
        # The first start waits for the server to import finappd: not on the event loop.
        await asyncio.to_thread(process.start)
    finally:
        for fd in given:
            os.close(fd)
    return Child(process, *readers)


async def exec_finappd(
    *args: str, env: dict[str, str] | None = None, stdout: int | None = None
) -> asyncio.subprocess.Process:
    """Start ``python -m finappd ARGS`` in a fresh interpreter (stdout piped unless given):
    for the tests of the real entry point and of what a fresh process imports."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "finappd",
        *args,
        stdout=asyncio.subprocess.PIPE if stdout is None else stdout,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


async def spawn_finappd(
    *args: str,
    env: dict[str, str] | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
) -> Child:
    """Start ``finappd ARGS`` as a child process forked from a server that has already
    imported finappd (the first call starts that server); stdout and stderr piped unless
    given (a descriptor, ``asyncio.subprocess.DEVNULL``, or ``STDOUT`` for stderr)."""
    return await spawn_main(_cli, args, env=env, stdout=stdout, stderr=stderr)


async def spawn_stallable(
    config: Path,
    block_s: float,
    marker: Path,
    env: dict[str, str] | None = None,
    stdout: int | None = None,
) -> Child:
    """Start the daemon on ``config`` under a harness whose SIGUSR1 blocks its loop ``block_s``."""
    argv = [str(config), str(block_s), str(marker)]
    return await spawn_main(_stallable, argv, env=env, stdout=stdout)


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
