"""The daemon: APScheduler jobs → flow runs; signals; lifecycle.

start → open the store (stale ``running`` runs become ``interrupted``) → schedule
one job per flow → ``READY=1`` → … → SIGTERM/SIGINT: stop triggering, let runs
in flight finish within the grace period, cancel what is left (their runs end
``cancelled``), ``STOPPING=1``, exit 0.

Every run is an asyncio task owned by :class:`Daemon`: tracked by flow name (so a
flow never overlaps itself), bounded by its deadline, and its exception logged.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from finappd import systemd
from finappd.config import Settings
from finappd.flows import RunSummary
from finappd.runtime import Runtime

__all__ = ["Daemon", "misfire_grace"]

log = structlog.get_logger(__name__)


def misfire_grace(interval: timedelta) -> int:
    """Seconds a late fire still runs: half the interval, between 1 s and 1 h."""
    return int(min(max(interval.total_seconds() / 2, 1), 3600))


class Daemon:
    """Runs every configured flow on its schedule until asked to stop."""

    def __init__(self, settings: Settings, *, stop_after: float | None = None) -> None:
        self.settings = settings
        self.stop_after = stop_after
        self.stopping = asyncio.Event()
        self.running: dict[str, asyncio.Task[RunSummary]] = {}
        self.last: dict[str, RunSummary] = {}
        self._scheduler: AsyncIOScheduler | None = None
        self._runtime: Runtime | None = None

    def __repr__(self) -> str:
        return f"<Daemon flows={len(self.settings.flows)} running={sorted(self.running)}>"

    def request_stop(self, reason: str) -> None:
        """Begin a graceful stop (idempotent)."""
        if not self.stopping.is_set():
            log.info("daemon.stopping", reason=reason)
            self.stopping.set()

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or ``stop_after`` seconds); return the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        watchdog: asyncio.Task[None] | None = None
        try:
            async with Runtime(self.settings) as runtime:
                self._runtime = runtime
                self._scheduler = self._schedule()
                self._scheduler.start()
                interval = systemd.watchdog_interval()
                if interval:
                    watchdog = asyncio.create_task(systemd.watchdog_loop(interval))
                systemd.notify("READY=1", f"STATUS={self._status_line()}")
                log.info(
                    "daemon.ready",
                    flows=[f.name for f in self.settings.flows],
                    store=str(runtime.store.path),
                )
                try:
                    await asyncio.wait_for(self.stopping.wait(), timeout=self.stop_after)
                except TimeoutError:
                    self.request_stop("stop_after")
                systemd.notify("STOPPING=1", "STATUS=stopping")
                self._scheduler.shutdown(wait=False)
                await self._drain()
        finally:
            if watchdog is not None:
                watchdog.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        log.info("daemon.stopped")
        return 0

    def _schedule(self) -> AsyncIOScheduler:
        scheduler = AsyncIOScheduler(timezone=UTC)
        for flow in self.settings.flows:
            trigger = flow.trigger()
            first: datetime | None = None
            if isinstance(trigger, timedelta):
                # An interval flow runs at start-up, then every interval.
                first = datetime.now(UTC)
                trigger = IntervalTrigger(seconds=trigger.total_seconds(), timezone=UTC)
            scheduler.add_job(
                self._fire,
                trigger,
                args=[flow.name],
                id=flow.name,
                name=flow.name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=misfire_grace(flow.min_interval()),
                next_run_time=first,
            )
        return scheduler

    async def _fire(self, name: str) -> None:
        """The APScheduler job: start a tracked run unless this flow is already running."""
        if self.stopping.is_set():
            return
        if name in self.running:
            log.warning("flow.skipped", flow=name, reason="previous run still in progress")
            return
        assert self._runtime is not None
        task = asyncio.create_task(self._runtime.run_flow(name, "schedule"), name=f"run-{name}")
        self.running[name] = task
        task.add_done_callback(lambda t: self._done(name, t))

    def _done(self, name: str, task: asyncio.Task[RunSummary]) -> None:
        self.running.pop(name, None)
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            log.error("flow.crashed", flow=name, error=f"{type(exc).__name__}: {exc}")
            return
        self.last[name] = task.result()
        systemd.notify(f"STATUS={self._status_line()}")

    async def _drain(self) -> None:
        """Let runs in flight finish within the grace period, then cancel them."""
        tasks = list(self.running.values())
        if not tasks:
            return
        grace = self.settings.grace_period.total_seconds()
        log.info("daemon.draining", runs=len(tasks), grace_s=grace)
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("daemon.cancelled_runs", runs=len(pending))
            await asyncio.wait(pending)

    def _status_line(self) -> str:
        parts = [f"{len(self.settings.flows)} flows"]
        for name, summary in sorted(self.last.items()):
            parts.append(f"{name}: {summary.status} {summary.tickers_ok}/{summary.tickers_total}")
        return "; ".join(parts)
