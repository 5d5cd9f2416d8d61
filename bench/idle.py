"""Idle daemon: start-up time to READY=1, then CPU per hour and RSS with nothing due.

``finappd run`` with two cron flows far in the future, ``$NOTIFY_SOCKET`` pointing at
a datagram socket this script owns (start-up is timed from spawn to ``READY=1``) and
``$WATCHDOG_USEC`` as the shipped unit sets it (pings every 30 s), and the HTTP API on,
as under systemd (``$RUNTIME_DIRECTORY``: its socket there). CPU is read from
``/proc/<pid>/task/*/schedstat`` (nanoseconds, every thread) over the measuring window
and extrapolated to an hour. The baseline is a bare ``python`` idling in ``asyncio``:
its start-up, CPU per hour and RSS, measured the same way in the same run. After the
window, the daemon's CPU per ``GET /metrics`` (over the socket, 20 scrapes) says what a
Prometheus scraping every 15 s would add per hour.

    python bench/idle.py               # 30 s window
    python bench/idle.py --quick       # 0.5 s window
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import tickers, write_config

CRON_FAR_AWAY = "0 3 1 1 *"  # 03:00 on January 1st
IDLE_PYTHON = "import asyncio, os; os.write(1, b'up\\n'); asyncio.run(asyncio.sleep(86400))"


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in nanoseconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread just exited
            total += int((task / "schedstat").read_text().split()[0])
    return total


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` now, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def idle_figures(pid: int, window: float) -> tuple[float, float]:
    """CPU seconds per hour over ``window`` seconds, and RSS at the end, of ``pid``."""
    before = cpu_ns(pid)
    time.sleep(window)
    used = (cpu_ns(pid) - before) / 1e9
    return used / window * 3600, rss_mb(pid)


class _UnixHTTP(http.client.HTTPConnection):
    """HTTP over the daemon's Unix socket."""

    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=10)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(self.socket_path))


def scrape_cpu_ms(pid: int, path: Path, scrapes: int = 20) -> float:
    """The daemon's CPU milliseconds per ``GET /metrics`` over its socket."""
    before = cpu_ns(pid)
    for _ in range(scrapes):
        conn = _UnixHTTP(path)
        try:
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
        finally:
            conn.close()
    return (cpu_ns(pid) - before) / 1e6 / scrapes


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``proc`` and wait for it (SIGKILL after 20 s)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def baseline(window: float, settle: float) -> tuple[float, float, float]:
    """Start-up, CPU s/h and RSS MB of a bare python idling in asyncio."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", IDLE_PYTHON], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        up = time.perf_counter() - started
        time.sleep(settle)
        cpu, rss = idle_figures(proc.pid, window)
    finally:
        stop(proc)
    return up, cpu, rss


def daemon(config: Path, window: float, settle: float) -> tuple[float, float, float, float]:
    """Start-up to READY=1, then CPU s/h and RSS MB over ``window``, and CPU ms per metrics
    scrape, of ``finappd run`` with its API on."""
    notify_path = config.parent / "notify.sock"
    notify_path.unlink(missing_ok=True)
    runtime = config.parent / "run"
    runtime.mkdir(exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(30)
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(notify_path),
            "WATCHDOG_USEC": "60000000",
            "RUNTIME_DIRECTORY": str(runtime),
        }
        argv = [sys.executable, "-m", "finappd", "--config", str(config), "run"]
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            while not notify.recv(4096).startswith(b"READY=1"):
                pass
            ready = time.perf_counter() - started
            cpu = rss = scrape = 0.0
            if window:
                time.sleep(settle)
                cpu, rss = idle_figures(proc.pid, window)
                scrape = scrape_cpu_ms(proc.pid, runtime / "api.sock")
        finally:
            stop(proc)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"finappd run exited {proc.returncode}: {err[-2000:]}")
    return ready, cpu, rss, scrape


def main() -> int:
    """Run the idle benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=30.0, help="seconds of idle measured")
    parser.add_argument("--quick", action="store_true", help="0.5 s window")
    args = parser.parse_args()
    window, settle = (0.5, 0.2) if args.quick else (args.window, 2.0)
    print(
        f"# idle: two cron flows far away, {window:g} s window after {settle:g} s settling; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="finappd-bench-") as tmp:
        base_up, base_cpu, base_rss = baseline(window, settle)
        print(
            f"idle process=python-asyncio startup_s={base_up:.3f} cpu_s_per_h={base_cpu:.4f} "
            f"rss_mb={base_rss:.1f}",
            flush=True,
        )
        config = write_config(
            Path(tmp),
            "http://127.0.0.1:9",  # never contacted: nothing is due
            {"eod": tickers(500), "eod-eu": tickers(500)},
            limit=4,
            workers=8,
            cron=CRON_FAR_AWAY,
        )
        ready, cpu, rss, scrape = daemon(config, window, settle)  # first start: makes the schema
        print(
            f"idle process=finappd-run api=on ready_s={ready:.3f} cpu_s_per_h={cpu:.4f} "
            f"rss_mb={rss:.1f} ready_ratio={ready / base_up:.2f} rss_ratio={rss / base_rss:.2f} "
            f"scrape_cpu_ms={scrape:.2f} scrape_15s_cpu_s_per_h={scrape * 240 / 1000:.3f}",
            flush=True,
        )
        restart, _, _, _ = daemon(config, 0.0, 0.0)  # the usual start: the database exists
        print(f"idle process=finappd-restart ready_s={restart:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
