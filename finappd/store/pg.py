"""The PostgreSQL store (``store.url``): the same tables, views, methods and transactions.

:class:`PgStore` is a :class:`~finappd.store.Store` whose connection is PostgreSQL's,
through psycopg 3: the mixins' SQL runs unchanged (:class:`PgConnection` turns ``?``
into ``%s``), and every write method is one transaction, so a reader of the database
sees a ticker's rows all or none, as on SQLite. What is SQLite's alone has its
PostgreSQL counterpart here: the schema version (``schema.read_version``), the
lock that tells a crashed run from a live one (a session advisory lock in place of
the ``flock``), and no WAL to bound.

psycopg is imported when a PostgreSQL store opens: a SQLite-only daemon never loads it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Self, cast

import structlog

from finappd.errors import StoreError
from finappd.store._mixin import Connection, Cursor, Dialect
from finappd.store.bars import BAR_COLUMNS, BAR_PARAMS, UPSERT_BARS_ON_CONFLICT
from finappd.store.schema import SCHEMA_VERSION, migrate, read_version
from finappd.store.store import Store, first_line

if TYPE_CHECKING:
    import psycopg

__all__ = ["PgConnection", "PgStore", "pg_connect", "redact_url"]

log = structlog.get_logger(__name__)

#: The session lock every read-write PgStore holds shared while open (any fixed number).
_OPEN_LOCK = 0x66696E617071

#: A session's staging table for ``write_bars``: COPY in, then one upsert from it. ``seq``
#: keeps the last of two rows for one key, as SQLite's row-by-row upsert does.
_BARS_IN = (
    "CREATE TEMP TABLE IF NOT EXISTS _bars_in (LIKE bars INCLUDING DEFAULTS, seq bigserial) "
    "ON COMMIT DELETE ROWS"
)
_COPY_BARS_IN = f"COPY _bars_in ({BAR_COLUMNS}) FROM STDIN"
_MERGE_BARS_IN = (
    f"INSERT INTO bars ({BAR_COLUMNS}) "  # noqa: S608 (constants)
    f"SELECT DISTINCT ON (symbol, interval, ts) {BAR_COLUMNS} FROM _bars_in "
    f"ORDER BY symbol, interval, ts, seq DESC {UPSERT_BARS_ON_CONFLICT}"
)


@functools.lru_cache(maxsize=1024)
def _pg_sql(sql: str) -> str:
    """``sql`` with psycopg's placeholders: ``%`` doubled, each ``?`` a ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


def redact_url(url: str) -> str:
    """``url`` as messages show it: without a password, should one have slipped in."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***@{host}"
    return f"{scheme}{sep}{rest}"


class PgConnection:
    """A psycopg connection as the store's :class:`~finappd.store._mixin.Connection`."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (or failed and not yet rolled back)."""
        from psycopg import pq

        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        """Run one statement with ``?`` parameters."""
        return self.raw.execute(_pg_sql(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        """Run one statement once per parameter row (pipelined by psycopg)."""
        cursor = self.raw.cursor()
        cursor.executemany(_pg_sql(sql), parameters)
        return cursor


def pg_connect(url: str, password: str | None, timeout: float, what: str) -> PgConnection:
    """An autocommit connection to ``url``; a StoreError saying ``what`` failed, and why."""
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(
            f"{what}: store.url needs psycopg: pip install 'finappd[postgresql]'"
        ) from exc
    extra: dict[str, Any] = {"connect_timeout": max(1, round(timeout))}
    if password is not None:
        extra["password"] = password
    try:
        return PgConnection(psycopg.connect(url, autocommit=True, **extra))
    except psycopg.Error as exc:
        raise StoreError(f"{what} failed: {first_line(exc)}") from exc


class PgStore(Store):
    """The finappd database on a PostgreSQL server."""

    dialect: Dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        connect_timeout: float = 10.0,
        busy_timeout: float = 10.0,
    ) -> None:
        # Store.__init__ is SQLite's (a path, its PRAGMAs): this sets what PgStore uses.
        self.readonly = False
        self.schema_version: int | None = None
        self.busy_timeout = busy_timeout
        self.url = url
        self.where = redact_url(url)
        self.password = password
        self.connect_timeout = connect_timeout
        self._pg: PgConnection | None = None
        self.writes = 0

    def __repr__(self) -> str:
        state = "closed" if self._pg is None else "read-only" if self.readonly else "open"
        return f"<PgStore {state} url={self.where!r} schema_version={self.schema_version}>"

    def open(self, *, readonly: bool = False) -> Self:
        """Connect; read-write migrates and takes the open lock, read-only never writes."""
        if self._pg is not None:
            raise StoreError(f"store {self.where} is already open")
        self._pg, self.readonly = self._connect(readonly), readonly
        self.schema_version = SCHEMA_VERSION
        return self

    def _connect(self, readonly: bool) -> PgConnection:
        """A session set up as :meth:`open` describes."""
        import psycopg

        conn = pg_connect(self.url, self.password, self.connect_timeout, f"open of {self.where}")
        try:
            # A statement blocked on a lock (another writer) gives up like SQLite's busy wait.
            conn.execute(f"SET lock_timeout = {round(self.busy_timeout * 1000):d}")
            if readonly:
                conn.execute("SET default_transaction_read_only = on")
                version = read_version(conn, "postgresql")
                if version != SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.where} has schema version {version}, this finappd reads "
                        f"{SCHEMA_VERSION}; start the daemon once to migrate it"
                    )
            else:
                migrate(conn, self.where, "postgresql")
                conn.execute("SELECT pg_advisory_lock_shared(?)", (_OPEN_LOCK,))
                conn.execute(_BARS_IN)
        except psycopg.Error as exc:
            conn.raw.close()
            raise StoreError(f"open of {self.where} failed: {first_line(exc)}") from exc
        except BaseException:
            conn.raw.close()
            raise
        return conn

    def close(self) -> None:
        """Close the connection (which drops its locks); closing twice is harmless."""
        conn, self._pg = self._pg, None
        if conn is not None:
            conn.raw.close()

    _BEGIN = "BEGIN"

    def _connection(self) -> Connection | None:
        """The open connection, or None; one the server or the network ended (a failed
        call said so) is made again first, so the store outlives a server restart."""
        if self._pg is not None and self._pg.raw.closed:
            log.warning("store.reconnecting", url=self.where)
            self._pg = self._connect(self.readonly)
        return self._pg

    def _driver_error(self) -> type[Exception]:
        """psycopg's base exception."""
        import psycopg

        return psycopg.Error

    def _after_commit(self, conn: Connection) -> None:
        """Nothing: PostgreSQL has no WAL file of ours to bound."""

    def data_version(self) -> None:
        """None: other daemons commit to the server without a trace in this session."""
        return None

    @contextmanager
    def snapshot_cursor(
        self, batch: int = 10_000
    ) -> Iterator[Callable[[str], Iterator[list[tuple[Any, ...]]]]]:
        """Yield ``read(table)``: each table's rows in batches, every table as of one moment
        (one ``REPEATABLE READ`` read-only transaction)."""
        with self._guard("export-snapshot") as conn:
            raw = cast(PgConnection, conn).raw
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:

                def read(table: str) -> Iterator[list[tuple[Any, ...]]]:
                    with raw.cursor(name=f"snapshot_{table}") as cursor:
                        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 (our names)
                        while rows := cursor.fetchmany(batch):
                            yield [tuple(row) for row in rows]

                yield read
            finally:
                conn.execute("ROLLBACK")

    def _upsert_bar_params(self, conn: Connection, params: list[object], count: int) -> None:
        """COPY the rows into the session's staging table, then upsert them in one statement:
        ~3x psycopg's pipelined ``executemany`` of the one-row upsert (bench/upsert.py)."""
        if self.readonly:  # the staging table is a read-write store's
            raise StoreError(f"write_bars on {self.where}: the store is read-only")
        raw = cast(PgConnection, conn).raw
        with raw.cursor() as cursor:
            with cursor.copy(_COPY_BARS_IN) as copy:
                for i in range(0, count * BAR_PARAMS, BAR_PARAMS):
                    copy.write_row(params[i : i + BAR_PARAMS])
            cursor.execute(_MERGE_BARS_IN)
            cursor.execute("DELETE FROM _bars_in")  # the next call of this transaction

    def pragmas(self) -> dict[str, str | int]:
        """SQLite's alone: a PostgreSQL store has none."""
        raise StoreError(f"pragmas on {self.where}: PostgreSQL has no PRAGMAs")

    def _alone(self) -> bool:
        """Whether no other finappd has the database open read-write: every open store
        holds the open lock shared, and the server drops a dead client's."""
        with self._guard("mark_interrupted") as conn:
            alone: bool = conn.execute("SELECT pg_try_advisory_lock(?)", (_OPEN_LOCK,)).fetchone()[
                0
            ]
        return alone

    def _end_alone(self) -> None:
        """Give back the exclusive hold :meth:`_alone` took (the shared one stays)."""
        with self._guard("mark_interrupted") as conn:
            conn.execute("SELECT pg_advisory_unlock(?)", (_OPEN_LOCK,))
