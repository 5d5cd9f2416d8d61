"""The daemon: APScheduler jobs → flow runs; signals; lifecycle; reload.

start → open the store (stale ``running`` runs become ``interrupted``) → schedule
one job per flow → ``READY=1`` → … → SIGTERM/SIGINT: stop triggering, let runs
in flight finish within the grace period, cancel what is left (their runs end
``cancelled``), ``STOPPING=1``, exit 0.

SIGHUP (``systemctl reload``) re-reads the config file the daemon started with and
validates it. An invalid file changes nothing: one ``config.reload_failed`` error
names the key, and ``STATUS=`` says the previous config is still in use. A valid
one is applied as :func:`~finappd.reload.diff_settings` says: flows are added, removed
and rescheduled, a changed provider gets a fresh instance as soon as no run is using
the old one (so one API never has two sets of limits at once), ``grace_period`` and
logging apply at once; ``store`` changes need a restart and say so.

Every task the daemon starts (runs, reloads, the watchdog) belongs to its one
:class:`~finappd.tasks.BackgroundTasks`: named, its exception logged, drained or
cancelled at shutdown. Runs are also tracked by flow name (so a flow never overlaps
itself: a fire while its previous run lasts logs ``flow.skipped``) and bounded by
their deadline.

A fire is never dropped for being late (a stalled loop, a suspended machine): APScheduler
gets no misfire grace, so however late, the missed fires run once (coalesced), and a fire
more than :data:`LATE_AFTER` behind its schedule logs ``flow.late`` with how late it is,
measured from the first fire it stands for.

Beside the schedule, the daemon serves its HTTP API (:mod:`finappd.api`: a run can be
triggered now, and watched) and sends notifications (:mod:`finappd.notify`); both are
started before ``READY=1`` and stopped after the runs are drained, see the
"services" methods at the end of :class:`Daemon`.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from finappd import systemd
from finappd.api import ApiServer, RunBoard
from finappd.config import FlowSettings, ProviderSettings, Settings
from finappd.errors import ConfigError
from finappd.flows import RunSummary
from finappd.flows.run import RunProgress
from finappd.logging import configure_logging
from finappd.notify import Notifier
from finappd.providers import BaseProvider
from finappd.reload import SettingsDiff, diff_settings
from finappd.runtime import Runtime
from finappd.status import status_line
from finappd.tasks import BackgroundTasks
from finappd.validate import load_checked

__all__ = ["LATE_AFTER", "Daemon", "late_by"]

log = structlog.get_logger(__name__)

#: How far behind its schedule a fire may start before it is logged as late (the loop's
#: own timer jitter is milliseconds).
LATE_AFTER = timedelta(seconds=1)


#: Where interval fires are counted from when daemons share a store (any fixed instant).
SLOT_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)


def current_slot(every: timedelta, now: datetime) -> datetime:
    """The latest fire at or before ``now`` of an interval ``every`` counted from SLOT_EPOCH."""
    return SLOT_EPOCH + every * ((now - SLOT_EPOCH) // every)


def late_by(due: datetime, now: datetime) -> timedelta | None:
    """How late a fire due at ``due`` is at ``now``, or None within :data:`LATE_AFTER`."""
    late = now - due
    return late if late > LATE_AFTER else None


class Daemon:
    """Runs every configured flow on its schedule until asked to stop; SIGHUP reloads."""

    def __init__(
        self,
        settings: Settings,
        *,
        config_path: Path | None = None,
        stop_after: float | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.stop_after = stop_after
        self.stopping = asyncio.Event()
        self.running: dict[str, asyncio.Task[RunSummary]] = {}
        self.last: dict[str, RunSummary] = {}
        self.reloads = 0
        self.reload_error: str | None = None
        self._finished_at: dict[str, datetime] = {}
        self._uses: dict[str, set[str]] = {}  # running flow -> the providers its run uses
        self._pending_providers: dict[str, ProviderSettings | None] = {}
        self._reload_lock = asyncio.Lock()
        self.tasks = BackgroundTasks()
        self._due: dict[str, datetime] = {}  # flow -> its job's next fire, as last submitted
        self._fire_at: dict[str, datetime] = {}  # flow -> the fire its job was submitted for
        self._scheduler: AsyncIOScheduler | None = None
        self._runtime: Runtime | None = None
        self.board = RunBoard()
        self._api = ApiServer(self)
        self._notifier = Notifier(self, self.tasks)

    def __repr__(self) -> str:
        return (
            f"<Daemon flows={len(self.settings.flows)} running={sorted(self.running)} "
            f"reloads={self.reloads} reload_error={self.reload_error!r}>"
        )

    def request_stop(self, reason: str) -> None:
        """Begin a graceful stop (idempotent)."""
        if not self.stopping.is_set():
            log.info("daemon.stopping", reason=reason)
            self.stopping.set()

    def request_reload(self) -> None:
        """Start a tracked reload (the SIGHUP handler); reloads run one after another."""
        if self.stopping.is_set():
            log.warning("config.reload_ignored", reason="stopping")
            return
        self.tasks.start(
            self.reload(), name="reload", kind="reload", failure="config.reload_crashed"
        )

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or ``stop_after`` seconds); return the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            async with Runtime(self.settings, daemon=True) as runtime:
                self._runtime = runtime
                self._scheduler = AsyncIOScheduler(timezone=UTC)
                self._scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
                for flow in self.settings.flows:
                    self._add_job(flow, at_start=True)
                self._scheduler.start()
                await self._start_services()
                interval = systemd.watchdog_interval()
                if interval:
                    self.tasks.start(
                        systemd.watchdog_loop(interval),
                        name="watchdog",
                        kind="watchdog",
                        failure="systemd.watchdog_crashed",
                    )
                systemd.notify("READY=1", f"STATUS={self.status_line()}")
                log.info(
                    "daemon.ready",
                    flows=[f.name for f in self.settings.flows],
                    store=runtime.store.where,
                    config=None if self.config_path is None else str(self.config_path),
                    watchdog_s=interval,
                )
                try:
                    await asyncio.wait_for(self.stopping.wait(), timeout=self.stop_after)
                except TimeoutError:
                    self.request_stop("stop_after")
                # No ping may follow STOPPING=1, however long the shutdown's drains take.
                await self.tasks.cancel(self.tasks.of("watchdog"))
                systemd.notify("STOPPING=1", "STATUS=stopping")
                self._scheduler.shutdown(wait=False)
                await self.tasks.cancel(self.tasks.of("reload"))
                await self._drain()
                await self._stop_services()
        finally:
            await self.tasks.close()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        log.info("daemon.stopped")
        return 0

    def _add_job(self, flow: FlowSettings, *, at_start: bool) -> None:
        """Schedule ``flow``; an interval flow also runs at once when ``at_start``."""
        assert self._scheduler is not None
        self._due.pop(flow.name, None)  # a new schedule: the old one's next fire means nothing
        trigger = flow.trigger()
        # Only ever pass a real time: APScheduler 3 adds a job with next_run_time=None *paused*.
        first: dict[str, datetime] = {}
        if isinstance(trigger, timedelta):
            # Daemons sharing a store must agree on the fire times: multiples of the interval
            # since a fixed epoch, the run at start being the current one's. Alone, the
            # interval counts from the start.
            shared = self._runtime is not None and self._runtime.coord is not None
            if at_start:
                now = datetime.now(UTC)
                first["next_run_time"] = current_slot(trigger, now) if shared else now
            trigger = IntervalTrigger(
                seconds=trigger.total_seconds(),
                timezone=UTC,
                start_date=SLOT_EPOCH if shared else None,
            )
        self._scheduler.add_job(
            self._fire,
            trigger,
            args=[flow.name],
            id=flow.name,
            name=flow.name,
            coalesce=True,
            max_instances=1,
            # No limit: a fire however late still runs (once, coalesced) and _submitted says so;
            # a grace would make APScheduler drop it with only its own warning.
            misfire_grace_time=None,
            **first,
        )

    def _submitted(self, event: JobSubmissionEvent) -> None:
        """Log ``flow.late`` for a fire behind its schedule; remember the job's next fire."""
        assert self._scheduler is not None
        scheduled: datetime = event.scheduled_run_times[-1]  # coalesced: the last missed fire
        # The job already points past this fire; the fire it pointed at before is the first
        # this one stands for (unknown for a job's first fire: then it is `scheduled`).
        due = min(self._due.get(event.job_id, scheduled), scheduled)
        job = self._scheduler.get_job(event.job_id)
        if job is not None and job.next_run_time is not None:
            self._due[event.job_id] = job.next_run_time
        self._fire_at[event.job_id] = scheduled
        late = late_by(due, datetime.now(UTC))
        if late is not None:
            log.warning(
                "flow.late",
                flow=event.job_id,
                due=due.isoformat(),
                late_s=round(late.total_seconds(), 3),
                reason="the event loop or the clock stalled past this fire; running it now",
            )

    async def _fire(self, name: str, trigger: str = "schedule") -> None:
        """The APScheduler job: start a tracked run unless this flow is already running."""
        if self.stopping.is_set():
            return
        if name in self.running:
            log.warning("flow.skipped", flow=name, reason="previous run still in progress")
            return
        assert self._runtime is not None
        fire_at = self._fire_at.pop(name, None) if trigger == "schedule" else None
        if fire_at is not None and self._runtime.coord is not None:
            # Several daemons share the store: the one that claims the fire runs it.
            await self._runtime.coord.interrupt_dead()
            holder = await self._runtime.coord.claim_fire(name, fire_at)
            if holder is not None:
                log.info("flow.claimed", flow=name, fire_at=fire_at.isoformat(), daemon=holder)
                return
            if name in self.running or self.stopping.is_set():
                return  # it started, or the daemon began to stop, while the claim was made
        self._swap_idle_providers()
        task = self.tasks.start(
            self._runtime.run_flow(name, trigger, events=self.board.publish, fire_at=fire_at),
            name=f"run-{name}",
            kind="run",
            failure="flow.crashed",
            flow=name,
        )
        self.running[name] = task
        flow = self.settings.flow(name)
        self._uses[name] = {flow.provider, *flow.fallback}
        task.add_done_callback(lambda t: self._done(name, t))
        systemd.notify(f"STATUS={self.status_line()}")

    def _done(self, name: str, task: asyncio.Task[RunSummary]) -> None:
        self.running.pop(name, None)
        self._uses.pop(name, None)
        self._swap_idle_providers()
        if task.cancelled() or task.exception() is not None:  # a crash is logged by self.tasks
            return
        self.last[name] = task.result()
        self._finished_at[name] = datetime.now(UTC)
        systemd.notify(f"STATUS={self.status_line()}")

    async def _drain(self) -> None:
        """Let runs in flight finish within the grace period, then cancel them."""
        runs = self.tasks.of("run")
        if not runs:
            return
        grace = self.settings.grace_period.total_seconds()
        log.info("daemon.draining", runs=len(runs), grace_s=grace)
        pending = await self.tasks.wait(runs, grace)
        if pending:
            log.warning("daemon.cancelled_runs", runs=len(pending))
            await self.tasks.cancel(pending)

    async def reload(self) -> bool:
        """Re-read and validate the config file; apply it, or keep the old one if invalid."""
        async with self._reload_lock:
            systemd.notify(*systemd.reloading_fields())
            try:
                return await self._reload()
            finally:
                systemd.notify("READY=1", f"STATUS={self.status_line()}")

    async def _reload(self) -> bool:
        path = self.config_path
        if path is None:
            self.reload_error = "no config file to re-read"
            log.error("config.reload_failed", problem=self.reload_error, kept="previous config")
            return False
        try:
            # A thread: a long tickers_file must not hold up the event loop (and the watchdog).
            new = await asyncio.to_thread(load_checked, path)
        except ConfigError as exc:
            self.reload_error = str(exc)
            log.error(
                "config.reload_failed",
                config=str(path),
                key=exc.key,
                problem=exc.problem,
                kept="previous config",
            )
            return False
        diff = self._apply(new)
        self.reload_error = None
        self.reloads += 1
        log.info(
            "config.reloaded", config=str(path), next_fires=self._next_fires(), **diff.as_log()
        )
        if diff.restart_needed:
            log.warning("config.restart_needed", keys=list(diff.restart_needed))
        return True

    def _apply(self, new: Settings) -> SettingsDiff:
        """Switch to ``new`` (already validated) as :func:`diff_settings` says; return the diff."""
        assert self._scheduler is not None
        assert self._runtime is not None
        old = self.settings
        diff = diff_settings(old, new)
        if diff.logging_changed:
            configure_logging(new.logging.level, new.logging.format)
        # Runs started from now on read their flow's settings from here.
        self.settings = new
        self._runtime.settings = new.model_copy(update={"store": old.store})
        for name in diff.providers_rebuilt:
            self._pending_providers[name] = new.providers.get(name)
        self._swap_idle_providers()
        for name in diff.flows_removed + diff.flows_rescheduled:
            self._scheduler.remove_job(name)
            self._due.pop(name, None)
        for name in diff.flows_rescheduled + diff.flows_added:
            self._add_job(new.flow(name), at_start=name in diff.flows_added)
        return diff

    def _swap_idle_providers(self) -> None:
        """Give each changed provider its new instance once no running run uses the old one."""
        if not self._pending_providers or self._runtime is None:
            return
        for name in list(self._pending_providers):
            if any(name in used for used in self._uses.values()):
                continue  # a run in flight keeps the old instance; new runs share it meanwhile
            self._runtime.rebuild_provider(name, self._pending_providers.pop(name))
            log.info("provider.reconfigured", provider=name)

    def _next_fires(self) -> dict[str, datetime | None]:
        """Each scheduled flow's next fire time (None before the scheduler starts)."""
        if self._scheduler is None:
            return {}
        return {job.id: getattr(job, "next_run_time", None) for job in self._scheduler.get_jobs()}

    def status_line(self) -> str:
        """The one-line ``STATUS=`` for ``systemctl status``."""
        next_fires = self._next_fires()
        last = {
            name: (s.status, s.tickers_ok, s.tickers_total, self._finished_at[name])
            for name, s in self.last.items()
            if name in self._finished_at
        }
        note = None
        if self.reload_error is not None:
            note = f"reload failed, previous config kept: {self.reload_error}"
        line = status_line(self.settings, last, list(self.running), next_fires, note)
        return line[: systemd.STATUS_MAX]

    # Services: the HTTP API and the notifier, and what they ask of the daemon.

    async def _start_services(self) -> None:
        """Start the HTTP API (if ``[api]`` says where) and the notifier (if configured)."""
        await self._api.start()
        await self._notifier.start()

    async def _stop_services(self) -> None:
        """Close the API (its event streams have seen their runs end) and the notifier."""
        await self._api.stop()
        await self._notifier.stop()

    def alive(self) -> bool:
        """Whether the scheduler runs and no stop was asked for (``GET /healthz``)."""
        return (
            not self.stopping.is_set() and self._scheduler is not None and self._scheduler.running
        )

    def live_providers(self) -> Mapping[str, BaseProvider]:
        """The provider instances in use (``GET /metrics``)."""
        return {} if self._runtime is None else self._runtime.providers

    async def trigger_now(self, name: str) -> int | None:
        """Start ``name`` now (trigger ``api``) unless it is running; return its run's id.

        None when no run could start: the daemon is stopping, or the run failed before
        its row was written (logged by the run).
        """
        if (current := self.board.running(name)) is not None:
            return current.run_id
        if self.stopping.is_set():
            return None
        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def seen(event: RunProgress) -> None:
            if event.flow == name and not started.done():
                started.set_result(event.run_id)

        with self.board.listen(seen):
            if name not in self.running:
                await self._fire(name, "api")
            task = self.running.get(name)
            waits: set[asyncio.Future[Any]] = {started} if task is None else {started, task}
            await asyncio.wait(
                waits,
                timeout=self.settings.api.timeout.total_seconds(),
                return_when=asyncio.FIRST_COMPLETED,
            )
        if not started.done():
            started.cancel()
            return None
        return started.result()
