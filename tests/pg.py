"""A real PostgreSQL server for the tests: one throwaway cluster per test process.

``$FINAPPD_TEST_PG_URL`` (a superuser's URL) names a server to use instead. Otherwise the
cluster is made with the machine's ``initdb``/``pg_ctl`` (Debian's ``postgresql`` package)
in a temporary directory, on a free port, as the ``postgres`` user when the tests run as
root (PostgreSQL refuses to run as root). Without PostgreSQL the tests that need it are
skipped, unless ``FINAPPD_REQUIRE_PG=1`` (CI sets it): then they fail.
Each test gets a database of its own (``CREATE DATABASE`` copies ``template1``: ~70 ms).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from finappd.store import Store
from finappd.store.pg import PgStore

__all__ = ["PgServer", "pg_server_or_skip", "raw"]


class PgServer:
    """A running server: ``url(db)`` for a database on it, ``create()`` for a new one."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url  # ends with "/<database>"

    def url(self, database: str) -> str:
        """The URL of ``database`` on this server."""
        return f"{self.base_url.rsplit('/', 1)[0]}/{database}"

    def create(self) -> str:
        """A new, empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.base_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return None if initdb is None else Path(initdb).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _cluster(bindir: Path) -> Iterator[PgServer]:
    """initdb + pg_ctl start in a temporary directory; stopped and removed afterwards."""
    as_root = os.geteuid() == 0
    top = Path(tempfile.mkdtemp(prefix="finappd-pg-"))
    data = top / "data"
    prefix: list[str] = []
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(top, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    options = f"-p {port} -k {top} -c listen_addresses=127.0.0.1 -c fsync=off"
    options += " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    start = ["-w", "-o", options, "start"]
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        # Trust for all but the role tests/test_pg_daemon.py gives a password to check it.
        hba = data / "pg_hba.conf"
        rules = hba.read_text(encoding="utf-8")
        hba.write_text(f"host all finappd_pw 127.0.0.1/32 scram-sha-256\n{rules}", "utf-8")
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(top / "log"), *start],
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield PgServer(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(top, ignore_errors=True)


@contextlib.contextmanager
def pg_server_or_skip() -> Iterator[PgServer]:
    """The server the tests use (see the module docstring)."""
    url = os.environ.get("FINAPPD_TEST_PG_URL")
    if url:
        yield PgServer(url)
        return
    bindir = _binaries()
    if bindir is None:
        reason = "PostgreSQL is not installed (Debian: apt-get install postgresql)"
        if os.environ.get("FINAPPD_REQUIRE_PG") == "1":
            pytest.fail(f"FINAPPD_REQUIRE_PG=1 but {reason}")
        pytest.skip(reason)
    with _cluster(bindir) as server:
        yield server


def raw(store: Store, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Rows of ``sql`` (``?`` parameters) read through a connection of its own, as another
    program would: plain sqlite3 for a SQLite store, psycopg for a PostgreSQL one."""
    if isinstance(store, PgStore):
        with psycopg.connect(store.url, connect_timeout=10) as pg:
            return [tuple(r) for r in pg.execute(sql.replace("?", "%s"), params).fetchall()]
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        rows: list[tuple[object, ...]] = conn.execute(sql, params).fetchall()
    return rows
