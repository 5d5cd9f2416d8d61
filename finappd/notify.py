"""Notifications: a message when a condition starts and when it ends, never twice in between.

Conditions, read from the database by the same rules as ``finappd status``:

==========================  ======================================================================
key                         active while
==========================  ======================================================================
``stale:<flow>``            the flow is stale by the ``status --check`` rule (a flow that has
                            never run yet is not: it is new, not broken)
``failing:<flow>``          its newest ``[notify] failed_runs`` finished runs all failed
``key_refused:<provider>``  its newest run found the provider's key refused
``quota_spent:<provider>``  its newest run found the provider parked (quota spent)
==========================  ======================================================================

They are looked at every ``check_every`` and after each run. Each change (a condition
starting, or ending: "recovered") sends one message to every ``[notify] urls`` entry
(Apprise URLs; ``pip install 'finappd[notify]'``); what was said is kept in memory, so a
restart may say a standing problem again. ``[notify] ping_url`` (healthchecks.io, Uptime
Kuma push) gets a GET after each good run (``ok`` or ``partial``): a dead-man's switch
that alarms when the pings stop. Sending happens on one worker task, each message and
ping within ``timeout``; a failure is logged (without the URL, which holds a token) and
never touches a run. The notifier's tasks belong to the daemon's
:class:`~finappd.tasks.BackgroundTasks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import structlog
import yarl

from finappd.config import NotifySettings, Settings
from finappd.flows.run import RunProgress
from finappd.status import flow_health, provider_health
from finappd.store import Store
from finappd.store.backend import database_exists, open_readonly
from finappd.tasks import BackgroundTasks

if TYPE_CHECKING:
    from finappd.api.board import RunBoard

__all__ = ["Change", "Notifier", "changes", "conditions"]

log = structlog.get_logger(__name__)

#: Messages and pings waiting to be sent before new ones are dropped (and logged).
QUEUE_SIZE = 100
_STATES = {"key_refused": "key_refused", "parked": "quota_spent"}
_GOOD = frozenset({"ok", "partial"})


def conditions(settings: Settings, store: Store, now: datetime) -> dict[str, str | None]:
    """Every condition's key and, when it is active, what is wrong (None: all is well)."""
    found: dict[str, str | None] = {}
    need = settings.notify.failed_runs
    recent = store.last_runs(limit=need + 1)
    for health in flow_health(settings, store, now):
        ran = health.last_run is not None
        found[f"stale:{health.flow}"] = health.problem if ran else None
        finished = [r for r in recent if r.flow == health.flow and r.status != "running"][:need]
        failing = len(finished) == need and all(r.status == "failed" for r in finished)
        found[f"failing:{health.flow}"] = (
            f"its last {need} runs failed (newest #{finished[0].id}: {finished[0].error})"
            if failing
            else None
        )
    for provider in provider_health(settings, store, store.last_runs(limit=1)):
        for state, key in _STATES.items():
            active = provider.get("state") == state
            found[f"{key}:{provider['provider']}"] = (
                str(provider.get("state_detail", state)) if active else None
            )
    return found


@dataclass(frozen=True, slots=True)
class Change:
    """A condition that started (``problem`` set) or ended (``problem`` None)."""

    key: str
    problem: str | None

    @property
    def title(self) -> str:
        """The message's title, e.g. ``finappd: stale:eod`` or ``finappd: recovered stale:eod``."""
        return f"finappd: {self.key}" if self.problem else f"finappd: recovered {self.key}"

    @property
    def body(self) -> str:
        """The message's text."""
        kind, _, name = self.key.partition(":")
        if self.problem is None:
            return f"{name}: {kind.replace('_', ' ')} is over."
        return f"{name}: {kind.replace('_', ' ')}: {self.problem}"


def changes(said: dict[str, str], now: Mapping[str, str | None]) -> list[Change]:
    """What changed since ``said`` (condition → problem last notified); updates ``said``."""
    found: list[Change] = []
    for key, problem in now.items():
        if problem is not None and key not in said:
            said[key] = problem
            found.append(Change(key, problem))
        elif problem is None and key in said:
            del said[key]
            found.append(Change(key, None))
    return found


class Source(Protocol):
    """What the notifier watches: the daemon's config and its runs' events."""

    @property
    def settings(self) -> Settings:
        """The configuration in use."""
        ...

    @property
    def board(self) -> RunBoard:
        """The runs in progress and their events."""
        ...


class Notifier:
    """Watches the conditions and the runs; sends messages and pings on one worker task."""

    def __init__(self, source: Source, tasks: BackgroundTasks | None = None) -> None:
        self.source = source
        self.tasks = tasks or BackgroundTasks()  # the daemon's: one owner for its tasks
        self.said: dict[str, str] = {}
        self.checks = 0
        self.sent = 0
        self.failed = 0
        self._queue: asyncio.Queue[Change | RunProgress | None] = asyncio.Queue(QUEUE_SIZE)
        self._check_lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._apprise: Any = None
        self._unlisten: contextlib.ExitStack | None = None

    def __repr__(self) -> str:
        return (
            f"<Notifier said={sorted(self.said)} checks={self.checks} sent={self.sent} "
            f"failed={self.failed} "
            f"queued={self._queue.qsize()}>"
        )

    @property
    def settings(self) -> NotifySettings:
        """The ``[notify]`` section in use."""
        return self.source.settings.notify

    async def start(self) -> None:
        """Begin watching, if any URL or ping URL is configured."""
        settings = self.settings
        if not settings.urls and settings.ping_url is None:
            return
        if settings.urls:
            self._apprise = _apprise([url.get_secret_value() for url in settings.urls])
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=settings.timeout.total_seconds())
        )
        self._unlisten = contextlib.ExitStack()
        self._unlisten.enter_context(self.source.board.listen(self._on_event))
        self._spawn(self._work(), "notify-worker", kind="notify-worker")
        if self._apprise is not None:
            self._spawn(self._check_loop(), "notify-checks")
        log.info("notify.started", urls=len(settings.urls), ping=settings.ping_url is not None)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str, kind: str = "notify") -> None:
        self.tasks.start(coro, name=name, kind=kind, failure="notify.crashed", task=name)

    async def stop(self) -> None:
        """Send what is queued (within ``timeout`` per item), then stop."""
        if self._unlisten is not None:
            self._unlisten.close()
        await self.tasks.cancel(self.tasks.of("notify"))  # the checks
        workers = self.tasks.of("notify-worker")
        if workers:
            if self._queue.full():
                log.error("notify.dropped", items=self._queue.qsize(), reason="stopping")
            else:
                self._queue.put_nowait(None)  # the worker sends what is queued, then ends
            deadline = self.settings.timeout.total_seconds() * 2
            await self.tasks.cancel(await self.tasks.wait(workers, deadline))
        if self._session is not None:
            await self._session.close()

    def _on_event(self, event: RunProgress) -> None:
        if not event.final:
            return
        if event.status in _GOOD and self.settings.ping_url is not None:
            self._put(event)
        if self._apprise is not None:
            self._spawn(self._check_once(), "notify-check")

    def _put(self, item: Change | RunProgress) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            log.error("notify.dropped", item=repr(item), reason="too many messages queued")

    async def _check_once(self) -> None:
        await self.check()

    async def _check_loop(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.settings.check_every.total_seconds())

    async def check(self) -> list[Change]:
        """Read the conditions now and queue a message for each change."""
        settings = self.source.settings
        if not database_exists(settings.store):
            return []

        def read() -> dict[str, str | None]:
            store = open_readonly(settings.store)
            try:
                return conditions(settings, store, datetime.now(UTC))
            finally:
                store.close()

        async with self._check_lock:
            try:
                async with asyncio.timeout(settings.store.busy_timeout.total_seconds() + 5):
                    now = await asyncio.to_thread(read)
            except Exception as exc:  # a check that cannot read says so and tries again later
                log.error("notify.check_failed", error=f"{type(exc).__name__}: {exc}")
                return []
            found = changes(self.said, now)
            self.checks += 1
        for change in found:
            log.warning("notify.condition", key=change.key, problem=change.problem)
            self._put(change)
        return found

    async def _work(self) -> None:
        while (item := await self._queue.get()) is not None:
            try:
                async with asyncio.timeout(self.settings.timeout.total_seconds()):
                    if isinstance(item, Change):
                        await self._send(item)
                    else:
                        await self._ping(item)
            except Exception as exc:  # a failing notifier is logged, never fatal
                self.failed += 1
                log.error(
                    "notify.failed",
                    what="ping" if isinstance(item, RunProgress) else item.key,
                    error=f"{type(exc).__name__}: {exc}",
                )

    async def _send(self, change: Change) -> None:
        # Apprise is synchronous; its plugins bound their own sockets (4 s by default).
        ok = await asyncio.to_thread(self._apprise.notify, body=change.body, title=change.title)
        if not ok:
            raise RuntimeError("no notification service accepted the message")
        self.sent += 1
        log.info("notify.sent", key=change.key, recovered=change.problem is None)

    async def _ping(self, event: RunProgress) -> None:
        assert self._session is not None
        assert self.settings.ping_url is not None
        url = yarl.URL(self.settings.ping_url.get_secret_value())
        try:
            async with self._session.get(url) as response:
                await response.read()
                status = response.status
        except aiohttp.ClientError as exc:
            # aiohttp's message quotes the URL, and the URL is the secret: name the host only.
            raise RuntimeError(f"{type(exc).__name__} from {url.host}") from None
        if status >= 400:
            raise RuntimeError(f"HTTP {status} from {url.host}")
        log.info("notify.pinged", run_id=event.run_id, flow=event.flow, host=url.host)


def _apprise(urls: list[str]) -> Any:
    """An ``apprise.Apprise`` sending to ``urls``, or None without Apprise (an optional extra,
    imported here: it is heavy)."""
    # Apprise 2.x loads its plugins on the first add(), and its e-mail plugin imports the
    # stdlib's deprecated imghdr: that warning is not ours to act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import apprise
        except ImportError:
            log.error(
                "notify.unavailable", reason="[notify] urls need: pip install 'finappd[notify]'"
            )
            return None
        sender = apprise.Apprise()
        for index, url in enumerate(urls):
            if not sender.add(url):
                # The URL itself may hold a token: say which entry, not what it says.
                log.error("notify.bad_url", entry=index, reason="Apprise cannot use it")
    return sender
