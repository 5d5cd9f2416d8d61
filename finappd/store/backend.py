"""Which store the configuration names: the SQLite file (``store.path``) or PostgreSQL
(``store.url``), opened read-write by the daemon and read-only by ``status``, the API and
notifications."""

from __future__ import annotations

import os

from finappd.config import StoreSettings
from finappd.errors import StoreError
from finappd.store.store import Store

__all__ = ["database_exists", "open_readonly", "store_for"]


def store_for(settings: StoreSettings) -> Store:
    """The store ``settings`` name, not yet opened."""
    busy_timeout = settings.busy_timeout.total_seconds()
    if settings.url is None:
        return Store(
            settings.resolved_path(), synchronous=settings.synchronous, busy_timeout=busy_timeout
        )
    from finappd.store.pg import PgStore  # psycopg is loaded for PostgreSQL alone

    password = None if settings.password is None else settings.password.get_secret_value()
    return PgStore(
        settings.url,
        password=password,
        connect_timeout=settings.connect_timeout.total_seconds(),
        busy_timeout=busy_timeout,
    )


def database_exists(settings: StoreSettings) -> bool:
    """Whether there is a database to read: always for PostgreSQL (the server says if not)."""
    return settings.url is not None or settings.resolved_path().exists()


def open_readonly(settings: StoreSettings) -> Store:
    """The store opened read-only, with a hint when a SQLite daemon's WAL is out of reach."""
    store = store_for(settings)
    try:
        return store.open(readonly=True)
    except StoreError as exc:
        path = settings.resolved_path()
        if settings.url is not None or "readonly" not in str(exc):
            raise
        if os.access(path.parent, os.W_OK):
            raise
        # SQLite needs the -wal/-shm files the running daemon keeps; see the README.
        raise StoreError(
            f"{exc}: is the daemon running? Without write access to {path.parent}, "
            "the database can be read only while the daemon has it open"
        ) from exc
