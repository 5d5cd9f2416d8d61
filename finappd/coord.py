"""Several daemons on one PostgreSQL store: each scheduled fire runs once, limits are shared.

With ``store.url`` set, every daemon (each with its own ``daemon_name``) holds a
:class:`Coordinator`: one more connection to the same database, used from one thread of
its own so that a slow query never blocks the event loop or the writer.

- **Fires.** Before a scheduled run starts, the daemon claims ``(flow, fire_at)`` in
  ``coord_fires`` (a primary key: one row, one winner); the others log ``flow.claimed``
  and skip it. A daemon that died claims nothing, so the next fire goes to a live one.
- **Quotas and rate windows.** Every request to a provider with a day or month quota or
  rate windows is admitted by :meth:`Coordinator.admit`, one transaction under a lock
  per provider: the quota is counted in ``provider_usage`` (the public ledger) and each
  send in ``coord_sends``, timed by the server's clock, so no two daemons spend the
  same request and a crash never loses a count (the count is the commit).
- **Crashed runs.** Each daemon holds a session lock named after it; a ``running`` run
  of a daemon whose lock nobody holds is a crash's leftover and is marked
  ``interrupted`` (:meth:`Coordinator.interrupt_dead`). The server drops a dead
  client's locks, even after ``kill -9``.

The tables ``coord_*`` are finappd's own bookkeeping, not part of the public schema.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import structlog

from finappd.errors import QuotaExhaustedError, StoreError
from finappd.store.pg import PgConnection, PgStore, pg_connect, redact_url
from finappd.store.runs import utc_text
from finappd.store.store import Store, first_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from finappd.providers._admission import SharedAdmission
    from finappd.providers._polite import PoliteClient

__all__ = ["CoordLink", "Coordinator", "coord_link", "shared_admission"]

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: The first key of every advisory lock finappd takes here (the second names the object).
_LOCKS = 0x6669
_TABLES = (
    "CREATE TABLE IF NOT EXISTS coord_fires (flow TEXT NOT NULL, fire_at TEXT NOT NULL, "
    "daemon TEXT NOT NULL, claimed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(), "
    "PRIMARY KEY (flow, fire_at))",
    "CREATE TABLE IF NOT EXISTS coord_sends (provider TEXT NOT NULL, "
    "sent_at TIMESTAMPTZ NOT NULL, daemon TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_coord_sends ON coord_sends (provider, sent_at)",
)
#: Sends older than this are pruned (longer than any rate window, which is at most an hour).
_KEEP_SENDS_S = 2 * 3600
#: How often a request waiting for a shared concurrency slot looks again (seconds).
_SLOT_POLL_S = 0.05
#: Fire claims older than this are pruned.
_KEEP_FIRES_DAYS = 30


def _key(name: str) -> int:
    """A 32-bit advisory lock key for ``name`` (the same in every daemon)."""
    return zlib.crc32(name.encode()) - 2**31


class Coordinator:
    """One daemon's connection to the shared database's coordination (synchronous)."""

    def __init__(
        self, url: str, *, daemon: str, password: str | None = None, connect_timeout: float = 10.0
    ) -> None:
        self.url = url
        self.daemon = daemon
        self.password = password
        self.connect_timeout = connect_timeout
        self._conn: PgConnection | None = None
        self._slots: dict[str, set[int]] = {}  # provider -> the concurrency slots held

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"<Coordinator {state} daemon={self.daemon!r} url={redact_url(self.url)!r}>"

    def _db(self) -> PgConnection:
        if self._conn is None:
            raise StoreError(f"coordination on {redact_url(self.url)}: not connected")
        return self._conn

    def open(self) -> None:
        """Connect, create the coordination tables, take this daemon's name lock."""
        import psycopg

        where = f"coordination on {redact_url(self.url)}"
        conn = pg_connect(self.url, self.password, self.connect_timeout, where)
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(?, 0)", (_LOCKS,))
            for statement in _TABLES:
                conn.execute(statement)
            conn.execute("COMMIT")
            held = conn.execute(
                "SELECT pg_try_advisory_lock(?, ?)", (_LOCKS, _key(self.daemon))
            ).fetchone()[0]
        except psycopg.Error as exc:
            conn.raw.close()
            raise StoreError(f"{where} failed: {first_line(exc)}") from exc
        if not held:
            conn.raw.close()
            raise StoreError(
                f"daemon_name {self.daemon!r} is in use by another running daemon on "
                f"{redact_url(self.url)}: give each daemon its own"
            )
        self._conn = conn

    def close(self) -> None:
        """Disconnect (the server drops this daemon's locks)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.raw.close()

    def claim_fire(self, flow: str, fire_at: datetime) -> str | None:
        """Claim the scheduled fire: None when this daemon won it, else the holder's name
        (another daemon's, or this one's from before a restart: a fire runs once)."""
        conn = self._db()
        fire = utc_text(fire_at)
        won = conn.execute(
            "INSERT INTO coord_fires (flow, fire_at, daemon) VALUES (?, ?, ?) "
            "ON CONFLICT (flow, fire_at) DO NOTHING RETURNING daemon",
            (flow, fire, self.daemon),
        ).fetchone()
        conn.execute(
            "DELETE FROM coord_fires WHERE flow = ? "
            "AND claimed_at < now() - make_interval(days => ?)",
            (flow, _KEEP_FIRES_DAYS),
        )
        if won is not None:
            return None
        row = conn.execute(
            "SELECT daemon FROM coord_fires WHERE flow = ? AND fire_at = ?", (flow, fire)
        ).fetchone()
        return "?" if row is None else str(row[0])

    def admit(
        self,
        provider: str,
        windows: Sequence[tuple[int, float]],
        *,
        daily: int | None,
        monthly: int | None,
        day: date,
    ) -> float:
        """Count one request to ``provider`` now, or say how long to wait (seconds > 0).

        ``windows`` are ``(count, seconds)``; ``day`` is the quota day. Raises
        :class:`QuotaExhaustedError` when the day's or the month's quota is spent.
        """
        conn = self._db()
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(?, ?)", (_LOCKS, _key(provider)))
            if daily is not None or monthly is not None:
                today, month = conn.execute(
                    "SELECT COALESCE(SUM(CASE WHEN day = ? THEN requests END), 0), "
                    "COALESCE(SUM(requests), 0) FROM provider_usage "
                    "WHERE provider = ? AND day BETWEEN ? AND ?",
                    (day.isoformat(), provider, day.replace(day=1).isoformat(), day.isoformat()),
                ).fetchone()
                if daily is not None and today >= daily:
                    raise QuotaExhaustedError(
                        f"{provider}: daily quota of {daily} requests is spent (all daemons)",
                        provider=provider,
                        period="daily",
                    )
                if monthly is not None and month >= monthly:
                    raise QuotaExhaustedError(
                        f"{provider}: monthly quota of {monthly} requests is spent (all daemons)",
                        provider=provider,
                        period="monthly",
                    )
            wait = 0.0
            for count, seconds in windows:
                # The count-th newest send inside the window: room comes when it leaves.
                row = conn.execute(
                    "SELECT EXTRACT(EPOCH FROM sent_at + make_interval(secs => ?) "
                    "- clock_timestamp())::float8 FROM coord_sends "
                    "WHERE provider = ? AND sent_at > clock_timestamp() - make_interval(secs => ?) "
                    "ORDER BY sent_at DESC OFFSET ? LIMIT 1",
                    (seconds, provider, seconds, count - 1),
                ).fetchone()
                if row is not None:
                    wait = max(wait, float(row[0]))
            if wait > 0:
                conn.execute("ROLLBACK")
                return wait
            conn.execute(
                "INSERT INTO coord_sends (provider, sent_at, daemon) "
                "VALUES (?, clock_timestamp(), ?)",
                (provider, self.daemon),
            )
            conn.execute(
                "INSERT INTO provider_usage (provider, day, requests) VALUES (?, ?, 1) "
                "ON CONFLICT (provider, day) DO UPDATE SET requests = provider_usage.requests + 1",
                (provider, day.isoformat()),
            )
            conn.execute(
                "DELETE FROM coord_sends WHERE provider = ? "
                "AND sent_at < clock_timestamp() - make_interval(secs => ?)",
                (provider, _KEEP_SENDS_S),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return 0.0

    def take_slot(self, provider: str, total: int) -> bool:
        """Hold one of ``provider``'s ``total`` request slots shared by every daemon (a session
        lock each, which the server frees if this daemon dies); False when all are taken."""
        conn = self._db()
        held = self._slots.setdefault(provider, set())
        for slot in range(total):
            if slot in held:
                continue  # a session may take its own lock twice: skip the ones it has
            if conn.execute("SELECT pg_try_advisory_lock(?, ?)", (_key(provider), slot)).fetchone()[
                0
            ]:
                held.add(slot)
                return True
        return False

    def give_slot(self, provider: str) -> None:
        """Free one request slot of ``provider`` this daemon holds (none after a reconnect:
        the server freed them with the old session)."""
        held = self._slots.get(provider)
        if held:
            self._db().execute("SELECT pg_advisory_unlock(?, ?)", (_key(provider), held.pop()))

    def guarded(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``, the driver's errors as StoreError; a lost connection
        (a server restart, the network) is made again once, and ``fn`` tried again."""
        import psycopg

        where = f"coordination on {redact_url(self.url)}"
        try:
            return fn(*args, **kwargs)
        except psycopg.OperationalError as exc:
            if self._conn is None or not self._conn.raw.closed:
                raise StoreError(f"{where} failed: {first_line(exc)}") from exc
            log.warning("coord.reconnecting", error=first_line(exc))
            self._conn, self._slots = None, {}
            self.open()
        except psycopg.Error as exc:
            raise StoreError(f"{where} failed: {first_line(exc)}") from exc
        try:
            return fn(*args, **kwargs)
        except psycopg.Error as exc:
            raise StoreError(f"{where} failed: {first_line(exc)}") from exc

    def interrupt_dead(self, now: datetime) -> int:
        """Mark ``running`` runs of daemons that hold no name lock ``interrupted``; how many.

        This daemon's own running runs at its start are its previous process's leftovers.
        """
        conn = self._db()
        daemons = [
            str(d)
            for (d,) in conn.execute(
                "SELECT DISTINCT daemon FROM runs WHERE status = 'running' AND daemon IS NOT NULL"
            ).fetchall()
        ]
        marked = 0
        for daemon in daemons:
            key = _key(daemon)
            mine = daemon == self.daemon
            if (
                not mine
                and not conn.execute("SELECT pg_try_advisory_lock(?, ?)", (_LOCKS, key)).fetchone()[
                    0
                ]
            ):
                continue  # alive
            try:
                cursor = conn.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ? "
                    "WHERE status = 'running' AND daemon = ?",
                    (utc_text(now), daemon),
                )
                marked += cursor.rowcount
                if cursor.rowcount:
                    log.warning("runs.interrupted", daemon=daemon, runs=cursor.rowcount)
            finally:
                if not mine:
                    conn.execute("SELECT pg_advisory_unlock(?, ?)", (_LOCKS, key))
        return marked


class CoordLink:
    """A :class:`Coordinator` used from the event loop: each call on its own thread."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finappd-coord")
        self._giving: set[asyncio.Future[None]] = set()

    def __repr__(self) -> str:
        return f"<CoordLink {self.coordinator!r}>"

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the coordination thread (see ``guarded``)."""
        loop = asyncio.get_running_loop()
        guarded = self.coordinator.guarded
        return await loop.run_in_executor(self._executor, lambda: guarded(fn, *args, **kwargs))

    async def open(self) -> None:
        """Connect (on the coordination thread)."""
        await self.call(self.coordinator.open)

    async def close(self) -> None:
        """Disconnect and stop the thread."""
        if self._giving:
            await asyncio.gather(*self._giving, return_exceptions=True)
        await self.call(self.coordinator.close)
        self._executor.shutdown(wait=True)

    async def claim_fire(self, flow: str, fire_at: datetime) -> str | None:
        """:meth:`Coordinator.claim_fire`, off the loop."""
        return await self.call(self.coordinator.claim_fire, flow, fire_at)

    async def interrupt_dead(self) -> int:
        """:meth:`Coordinator.interrupt_dead` as of now, off the loop."""
        return await self.call(self.coordinator.interrupt_dead, datetime.now(UTC))

    async def take_slot(self, provider: str, total: int) -> None:
        """Wait for one of ``provider``'s ``total`` shared request slots."""
        # Another daemon frees a slot: nothing in this process can signal it, so look again.
        while not await self.call(self.coordinator.take_slot, provider, total):  # noqa: ASYNC110
            await asyncio.sleep(_SLOT_POLL_S)

    def give_slot(self, provider: str) -> None:
        """Free a slot taken by :meth:`take_slot` (queued on the coordination thread)."""
        task = asyncio.ensure_future(self.call(self.coordinator.give_slot, provider))
        self._giving.add(task)
        task.add_done_callback(self._giving.discard)

    async def admit(
        self,
        provider: str,
        windows: Sequence[tuple[int, float]],
        *,
        daily: int | None,
        monthly: int | None,
        day: date,
    ) -> None:
        """Wait until the shared limits admit one request to ``provider``, counted."""
        # The server says how long until a window has room; other daemons' sends may take
        # it first, so the wait is asked again, not signalled.
        while (  # noqa: ASYNC110
            wait := await self.call(
                self.coordinator.admit, provider, windows, daily=daily, monthly=monthly, day=day
            )
        ) > 0:
            await asyncio.sleep(wait)


def coord_link(store: Store, name: str) -> CoordLink | None:
    """The coordination of the process ``name`` (its lock, its claims and sends) on the
    database of ``store``: a PostgreSQL store only."""
    if not isinstance(store, PgStore):
        return None
    return CoordLink(
        Coordinator(
            store.url, daemon=name, password=store.password, connect_timeout=store.connect_timeout
        )
    )


def shared_admission(link: CoordLink, client: PoliteClient) -> SharedAdmission | None:
    """The limits ``client``'s provider shares with other daemons, or None: none to share."""
    from finappd.providers._admission import SharedAdmission
    from finappd.providers.limits import HEADROOM

    limits = client.limits
    windows = [(rate.count, rate.period * HEADROOM) for rate in limits.windows()]
    daily, monthly, total = limits.daily(), limits.monthly(), client.max_concurrency_total
    admit: Callable[[], Awaitable[None]] | None = None
    if windows or daily is not None or monthly is not None:

        async def admit() -> None:
            await link.admit(
                client.name, windows, daily=daily, monthly=monthly, day=client.ledger.today()
            )

    if total is None:
        return None if admit is None else SharedAdmission(admit)

    async def take() -> None:
        await link.take_slot(client.name, total)

    return SharedAdmission(admit, take, lambda: link.give_slot(client.name))
