"""Shared fixtures: global logging state reset around every test; simulator and store factories."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
import structlog
from aioresponses import aioresponses
from structlog._config import BoundLoggerLazyProxy

from finappd.config import Settings
from finappd.sim import SimConfig, SimServer
from finappd.store import Store
from finappd.store.pg import PgStore
from tests.pg import PgServer, pg_server_or_skip
from tests.test_provider_support import mock_http

MakeServer = Callable[..., Awaitable[SimServer]]
MakeStore = Callable[..., Store]


def one_flow(
    db: Path,
    provider: str,
    options: Mapping[str, Any],
    tickers: Sequence[str],
    extra_providers: Mapping[str, Mapping[str, Any]] | None = None,
    **flow: Any,
) -> Settings:
    """Settings storing into ``db`` with one hourly flow ``eod`` of ``tickers`` on ``provider``."""
    return Settings.model_validate(
        {
            "store": {"path": str(db)},
            "providers": {provider: dict(options), **(extra_providers or {})},
            "flows": [
                {"name": "eod", "provider": provider, "tickers": list(tickers), "every": "1h"}
                | flow
            ],
        }
    )


@functools.cache
def _starts_processes(path: Path) -> bool:
    """Whether the test module at ``path`` starts real processes (its source says how)."""
    source = path.read_text(encoding="utf-8")
    return any(how in source for how in ("subprocess", "tests.procs", "from tests import procs"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules that start real processes (the long ones) first: on one xdist worker
    per core, a long module started last would leave the other cores idle at the end, while
    short in-process modules fill it. Each module's own order is kept."""
    items.sort(key=lambda item: not _starts_processes(item.path))


def _forget_cached_loggers() -> None:
    """Undo ``cache_logger_on_first_use``: a module's logger first used under one test's
    configuration would keep its processors, so a later test's ``capture_logs`` (which edits
    the configured processors) would not see it. The cache is the proxy's own ``bind``."""
    for name, module in list(sys.modules.items()):
        if name == "finappd" or name.startswith("finappd."):
            for value in vars(module).values():
                if isinstance(value, BoundLoggerLazyProxy):
                    vars(value).pop("bind", None)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Give every test fresh structlog config, contextvars, module loggers and root handlers."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    _forget_cached_loggers()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
async def sim_server() -> AsyncIterator[MakeServer]:
    """Factory starting SimServers on free loopback ports; stops every one it started."""
    started: list[SimServer] = []

    async def make(config: SimConfig | None = None) -> SimServer:
        server = SimServer(config)
        started.append(server)
        await server.start()
        return server

    yield make
    for server in started:
        await server.stop()


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    """Intercept aiohttp requests."""
    with mock_http() as mock:
        yield mock


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for this test process (see tests/pg.py); skips without one."""
    with pg_server_or_skip() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    name: str = request.param
    return name


@pytest.fixture
def make_store(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[MakeStore]:
    """Open stores of ``backend`` (one database per ``name``), all closed at teardown.

    On SQLite ``name`` is a file under tmp_path; on PostgreSQL a database made for this test.
    """
    opened: list[Store] = []
    databases: dict[str, str] = {}

    def make(
        name: str = "finappd.db",
        *,
        readonly: bool = False,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 10.0,
    ) -> Store:
        store: Store
        if backend == "sqlite":
            store = Store(tmp_path / name, synchronous=synchronous, busy_timeout=busy_timeout)
        else:
            if name not in databases:
                server: PgServer = request.getfixturevalue("pg_server")
                databases[name] = server.create()
            store = PgStore(databases[name], busy_timeout=busy_timeout)
        store.open(readonly=readonly)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
