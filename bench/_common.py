"""Shared plumbing of the benchmarks: the simulator process, configs, run-once, the plain client.

The simulator always runs in its own process (``finappd sim``), so on a small box
server and client each get a core instead of sharing one; finappd and the plain
baseline client are measured against the same simulator process in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp
import yarl

__all__ = [
    "ROOT",
    "RunOnce",
    "Sim",
    "chart_urls",
    "fmt_s",
    "free_port",
    "instructions",
    "parse_size_args",
    "plain_fetch",
    "run_once",
    "tickers",
    "write_config",
]

ROOT = Path(__file__).resolve().parent.parent
LOOKBACK_DAYS = 10


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tickers(n: int) -> list[str]:
    """``n`` distinct synthetic New York symbols (``B00000``, ``B00001``, …)."""
    return [f"B{i:05d}" for i in range(n)]


def fmt_s(seconds: float) -> str:
    """Seconds with three decimals."""
    return f"{seconds:.3f} s"


class Sim:
    """``finappd sim`` in a child process on a free port; control it over ``/__sim/``."""

    def __init__(self, *, latency: float = 0.0, max_concurrency: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "finappd", "sim", "--port", str(self.port)]
        argv += ["--latency", str(latency)]
        if max_concurrency is not None:
            argv += ["--max-concurrency", str(max_concurrency)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self) -> Self:
        deadline = time.monotonic() + 20
        while True:
            try:
                self.stats()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    self.close()
                    raise RuntimeError(f"simulator did not start: {err}") from None
                time.sleep(0.05)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the simulator (SIGTERM, then SIGKILL after 5 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/__sim/{path}", data=data)
        with urllib.request.urlopen(request, timeout=5) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result

    def stats(self) -> dict[str, Any]:
        """The simulator's counters."""
        return self._call("stats")

    def reset(self) -> None:
        """Zero the counters."""
        self._call("reset", {})

    def configure(self, **changes: Any) -> None:
        """Change latency / max_concurrency of the running simulator."""
        self._call("config", changes)

    def stats_config(self) -> dict[str, Any]:
        """The simulator's tunable settings as they are now."""
        return self._call("config", {})

    def cpu_seconds(self) -> float:
        """User + system CPU the simulator process has used so far."""
        return proc_cpu_seconds(self.proc.pid)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def write_config(
    directory: Path,
    url: str,
    flows: dict[str, Sequence[str]],
    *,
    limit: int,
    workers: int,
    cron: str | None = None,
) -> Path:
    """A config with one ``daily_bars`` flow per entry of ``flows`` against ``url``."""
    directory.mkdir(parents=True, exist_ok=True)
    schedule = f'cron = "{cron}"' if cron else 'every = "1d"\ndeadline = "1h"'
    parts = [
        f'[store]\npath = "{directory / "bench.sqlite3"}"\n',
        '[logging]\nformat = "json"\nlevel = "info"\n',
        f'[providers.yahoo]\nbase_url = "{url}"\nmax_concurrency = {limit}\n'
        'rate = "1000000/second"\nretries = 0\n',
    ]
    for name, symbols in flows.items():
        listing = directory / f"{name}.txt"
        listing.write_text("\n".join(symbols) + "\n", encoding="utf-8")
        parts.append(
            f'[[flows]]\nname = "{name}"\nprovider = "yahoo"\ntickers_file = "{listing}"\n'
            f"{schedule}\nnum_workers = {workers}\nlookback_days = {LOOKBACK_DAYS}\n"
        )
    path = directory / "finappd.toml"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


@dataclass(frozen=True, slots=True)
class RunOnce:
    """One ``finappd run-once`` process: its run summary and what the process cost."""

    summary: dict[str, Any]
    wall_s: float
    cpu_s: float
    run_cpu_s: float  # of the run alone: not start-up nor exit
    maxrss_mb: float

    @property
    def duration_s(self) -> float:
        """The run's own duration (start_run … finish_run), as finappd reports it."""
        value: float = self.summary["duration_s"]
        return value


# ``python -m finappd`` with two additions, both to stderr: the CPU the run itself used (all
# threads, from the flow's start to its summary: not the imports, config, store and calendar
# before it, nor the exit after), and at exit the peak RSS of its own address space (VmHWM).
# wait4's ru_maxrss cannot be used: Linux carries the parent's RSS over fork/exec into the
# child's, so a big benchmark process would pollute it.
# Diagnostic only (``--skip-usage-writes``): with BENCH_SKIP_USAGE_WRITES set, the quota
# ledger counts requests in memory but never writes them (its write-behind flush is a no-op).
_MEASURED_FINAPPD = """\
import atexit, os, runpy, sys

if os.environ.get("BENCH_SKIP_USAGE_WRITES"):
    from finappd.providers.quota import QuotaLedger

    async def _skip(self):
        self._pending.clear()
        return True

    QuotaLedger.flush = _skip

import finappd.runtime

_run_flow_once = finappd.runtime.run_flow_once

def _cpu():
    t = os.times()
    return t.user + t.system

async def _timed_run(*args, **kwargs):
    started = _cpu()
    summary = await _run_flow_once(*args, **kwargs)
    sys.stderr.write(f"BENCH-run-cpu-s {_cpu() - started}\\n")
    return summary

finappd.runtime.run_flow_once = _timed_run

def _report_peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write(f"BENCH-VmHWM-kB {line.split()[1]}\\n")

atexit.register(_report_peak)
sys.argv[0] = "finappd"
runpy.run_module("finappd", run_name="__main__", alter_sys=True)
"""


def _read_all(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Everything the child writes to stdout and stderr, until it closes both."""
    chunks: dict[int, list[bytes]] = {1: [], 2: []}
    assert proc.stdout is not None
    assert proc.stderr is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, 1)
        selector.register(proc.stderr, selectors.EVENT_READ, 2)
        while selector.get_map():
            for key, _ in selector.select():
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.data].append(data)
                else:
                    selector.unregister(key.fileobj)
    return b"".join(chunks[1]), b"".join(chunks[2])


def run_once(config: Path, flow: str, *, skip_usage_writes: bool = False) -> RunOnce:
    """Run ``python -m finappd --config CONFIG run-once FLOW``: its summary, CPU and peak RSS."""
    argv = [sys.executable, "-c", _MEASURED_FINAPPD, "--config", str(config), "run-once", flow]
    env = dict(os.environ)
    if skip_usage_writes:
        env["BENCH_SKIP_USAGE_WRITES"] = "1"
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # Read both pipes to the end, then reap with wait4, which is what gives the child's
    # CPU time (Popen.wait would reap it and lose the rusage).
    out, err = _read_all(proc)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 3):
        tail = (out + err).decode()[-2000:]
        raise RuntimeError(f"run-once exited {proc.returncode}: {tail}")
    summary: dict[str, Any] = json.loads(out.decode().splitlines()[-1])
    lines = err.decode().splitlines()
    [run_cpu] = [float(ln.split()[1]) for ln in lines if ln.startswith("BENCH-run-cpu-s ")]
    peak = [line for line in lines if line.startswith("BENCH-VmHWM-kB ")]
    cpu = usage.ru_utime + usage.ru_stime
    return RunOnce(summary, wall, cpu, run_cpu, int(peak[-1].split()[1]) / 1024)


def instructions(argv: Sequence[str]) -> int:
    """Instructions ``argv`` executes (``valgrind --tool=cachegrind``, user space, all threads).

    Unlike CPU time, the count does not move with the machine's load or clock: on a shared
    box it tells a 3 % change apart where CPU times vary by 20 %.
    """
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    tool = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    done = subprocess.run(
        [*tool, *argv], capture_output=True, text=True, timeout=3600, check=False, cwd=ROOT
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{argv[:3]} under valgrind: {done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def chart_urls(base_url: str, symbols: Sequence[str], now: datetime | None = None) -> list[str]:
    """The chart URLs finappd's daily_bars flow requests for ``symbols`` today.

    Built as YahooProvider builds them (a lookback window of ``LOOKBACK_DAYS`` in UTC,
    a day of margin each side, the same parameters in the same order, via yarl), so
    both clients send the same requests and get the same bodies.
    """
    today = (now or datetime.now(UTC)).date()
    start, end = today - timedelta(days=LOOKBACK_DAYS), today
    period1 = datetime.combine(start - timedelta(days=1), dt_time(), UTC)
    period2 = datetime.combine(end + timedelta(days=1), dt_time(), UTC)
    params = {
        "period1": str(int(period1.timestamp())),
        "period2": str(int(period2.timestamp())),
        "interval": "1d",
        "events": "div,splits",
        "includePrePost": "false",
    }
    urls = (
        yarl.URL(f"{base_url}/v8/finance/chart/{quote(s, safe='')}", encoded=True) for s in symbols
    )
    return [str(url.update_query(params)) for url in urls]


@dataclass(frozen=True, slots=True)
class PlainResult:
    """The plain client's wall time, CPU time and bytes read."""

    wall_s: float
    cpu_s: float
    ok: int
    bytes: int


async def _plain(urls: Sequence[str], concurrency: int) -> PlainResult:
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(url: str) -> tuple[int, int]:
            async with semaphore, session.get(yarl.URL(url, encoded=True)) as resp:
                body = await resp.read()
                return resp.status, len(body)

        cpu = time.process_time()
        started = time.perf_counter()
        answers = await asyncio.gather(*(one(u) for u in urls))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    ok = sum(1 for status, _ in answers if status == 200)
    return PlainResult(wall, cpu, ok, sum(size for _, size in answers))


def plain_fetch(urls: Sequence[str], concurrency: int) -> PlainResult:
    """The baseline: plain aiohttp + ``asyncio.gather`` + ``Semaphore(concurrency)``, no parse."""
    return asyncio.run(_plain(urls, concurrency))


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...``; ``t[0]`` is the elapsed seconds afterwards."""
    box = [0.0]
    started = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class Comparison:
    """finappd ``run-once`` and the plain client over the same N tickers, same simulator."""

    n: int
    finappd: RunOnce
    plain: PlainResult
    rejected_429: int
    plain_sim_cpu_s: float
    finappd_sim_cpu_s: float

    @property
    def ratio(self) -> float:
        """finappd's run duration over the plain client's wall time."""
        return self.finappd.duration_s / self.plain.wall_s

    @property
    def overhead_us(self) -> float:
        """Wall microseconds per ticker finappd spends above the plain client."""
        return (self.finappd.duration_s - self.plain.wall_s) / self.n * 1e6

    @property
    def finappd_cpu_us(self) -> float:
        """CPU microseconds per ticker of the run-once process's run (all its threads)."""
        return self.finappd.run_cpu_s / self.n * 1e6

    @property
    def plain_cpu_us(self) -> float:
        """CPU microseconds per ticker of the plain client."""
        return self.plain.cpu_s / self.n * 1e6

    def figures(self) -> str:
        """The ``key=value`` figures every fan-out line shares."""
        return (
            f"plain_s={self.plain.wall_s:.3f} finappd_s={self.finappd.duration_s:.3f} "
            f"ratio={self.ratio:.3f} overhead_us_per_ticker={self.overhead_us:.1f} "
            f"cpu_us_per_ticker_plain={self.plain_cpu_us:.0f} "
            f"cpu_us_per_ticker_finappd={self.finappd_cpu_us:.0f} "
            f"sim_cpu_us_per_request_plain={self.plain_sim_cpu_s / self.n * 1e6:.0f} "
            f"sim_cpu_us_per_request_finappd={self.finappd_sim_cpu_s / self.n * 1e6:.0f} "
            f"rows={self.finappd.summary['rows_written']} rejected_429={self.rejected_429}"
        )


def compare(
    sim: Sim, workdir: Path, n: int, *, limit: int, repeat: int, skip_usage_writes: bool = False
) -> Comparison:
    """Best of ``repeat`` runs of each client over ``n`` tickers (fresh database per run)."""
    symbols = tickers(n)
    urls = chart_urls(sim.url, symbols)
    best_plain: PlainResult | None = None
    best_run: RunOnce | None = None
    rejected = 0
    plain_sim_cpu = run_sim_cpu = math.inf
    for attempt in range(repeat):
        sim.reset()
        cpu = sim.cpu_seconds()
        plain = plain_fetch(urls, limit)
        if plain.ok != n:
            raise RuntimeError(f"plain client: only {plain.ok}/{n} answers were 200")
        if best_plain is None or plain.wall_s < best_plain.wall_s:
            best_plain = plain
            plain_sim_cpu = sim.cpu_seconds() - cpu
        config = write_config(
            workdir / f"n{n}-{attempt}", sim.url, {"bench": symbols}, limit=limit, workers=limit
        )
        cpu = sim.cpu_seconds()
        run = run_once(config, "bench", skip_usage_writes=skip_usage_writes)
        if run.summary["tickers_ok"] != n:
            raise RuntimeError(f"finappd: run was {run.summary}")
        if best_run is None or run.duration_s < best_run.duration_s:
            best_run = run
            run_sim_cpu = sim.cpu_seconds() - cpu
        rejected += sim.stats()["rejected_429"]
    assert best_plain is not None
    assert best_run is not None
    return Comparison(n, best_run, best_plain, rejected, plain_sim_cpu, run_sim_cpu)


def warm_up(sim: Sim, n: int, limit: int) -> float:
    """Fetch ``n`` tickers once at latency 0 so the simulator's caches are warm; return seconds."""
    latency = sim.stats_config()["latency"]
    sim.configure(latency=0)
    try:
        return plain_fetch(chart_urls(sim.url, tickers(n)), limit).wall_s
    finally:
        sim.configure(latency=latency)


def parse_size_args(
    description: str,
    sizes: Sequence[int],
    *,
    limit_help: str,
    repeat: int,
    quick_help: str,
    latency: bool = False,
    instructions: bool = False,
) -> argparse.Namespace:
    """The options of the sized benchmarks, parsed: ``sizes`` a list, ``--quick`` applied.

    ``note`` is added: the suffix of the header line that marks a diagnostic run.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sizes", default=",".join(map(str, sizes)), help="comma-separated N")
    if latency:
        parser.add_argument(
            "--latency", type=float, default=0.020, help="simulator latency, seconds"
        )
    parser.add_argument("--limit", type=int, default=50, help=limit_help)
    parser.add_argument("--repeat", type=int, default=repeat, help="best of this many runs")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    if instructions:
        parser.add_argument(
            "--instructions",
            action="store_true",
            help="count instructions per ticker under valgrind instead of timing (end-to-end)",
        )
    parser.add_argument(
        "--skip-usage-writes",
        action="store_true",
        help="diagnostic: the quota ledger does not await its SQLite write per request",
    )
    args = parser.parse_args()
    args.sizes = [200] if args.quick else [int(s) for s in args.sizes.split(",")]
    args.repeat = 1 if args.quick else args.repeat
    args.note = ", usage writes skipped (diagnostic)" if args.skip_usage_writes else ""
    return args
