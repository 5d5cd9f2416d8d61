"""What the ``Store`` mixins (bars, runs, usage) may use of the store they are mixed into.

The mixins' SQL is written once for both backends: ``?`` placeholders and the SQL that
SQLite and PostgreSQL share. :class:`Connection` is the slice of ``sqlite3.Connection``
they use, which :class:`finappd.store.pg.PgConnection` provides over psycopg.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol

__all__ = ["Connection", "Cursor", "Dialect", "StorePart"]

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

    if TYPE_CHECKING:  # implemented by Store; declared here so the parts type-check alone

        def _guard(self, operation: str) -> AbstractContextManager[Connection]: ...

        def _write(self, operation: str) -> AbstractContextManager[Connection]: ...
