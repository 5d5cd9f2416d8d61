"""What the ``Store`` mixins (bars, runs, usage) may use of the store they are mixed into.

The mixins' SQL is written once for both backends: ``?`` placeholders and the SQL that
SQLite and PostgreSQL share. :class:`Connection` is the slice of ``sqlite3.Connection``
they use, which :class:`finappd.store.pg.PgConnection` provides over psycopg.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol

__all__ = ["Connection", "Cursor", "Dialect", "StorePart", "execute_rows"]

#: Which database a store is.
Dialect = Literal["sqlite", "postgresql"]


class Cursor(Protocol):
    """The rows of one statement."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """One database connection: statements with ``?`` parameters, explicit transactions."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


class StorePart:
    """A part of ``Store``: where it is, its dialect and its two connection guards."""

    #: The database in messages: a file path, or a PostgreSQL URL (no password).
    where: str
    dialect: Dialect
    #: Writes to ``instruments`` through this store, and rollbacks, so far: with
    #: ``data_version()`` it tells whether rows copied earlier are still what is stored.
    writes: int

    if TYPE_CHECKING:  # implemented by Store; declared here so the parts type-check alone

        def _guard(self, operation: str) -> AbstractContextManager[Connection]: ...

        def _write(self, operation: str) -> AbstractContextManager[Connection]: ...


def execute_rows(
    conn: Connection, statement: Callable[[int], str], params: Sequence[Any], width: int, most: int
) -> None:
    """Run ``statement(n)``, a multi-row ``VALUES`` of ``n`` rows of ``width`` parameters,
    over ``params`` (the rows' parameters one after another), at most ``most`` rows a time.

    One statement step per chunk, where ``executemany`` takes one per row: sqlite3 releases
    and retakes the GIL around each step, and on the writer thread each retake waits for
    the busy event loop. Power-of-two chunks: a few distinct sizes, so ``statement`` is
    cached and sqlite3 keeps each compiled instead of compiling one per batch size.
    """
    count = len(params) // width
    done = 0
    while done < count:
        size = 1 << (min(count - done, most).bit_length() - 1)
        conn.execute(statement(size), params[done * width : (done + size) * width])
        done += size
