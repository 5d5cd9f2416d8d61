"""Shared fixtures: global logging state reset around every test; simulator and store factories."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import structlog
from aioresponses import aioresponses

from finappd.sim import SimConfig, SimServer
from tests.test_provider_support import mock_http

MakeServer = Callable[..., Awaitable[SimServer]]


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Give every test fresh structlog config, contextvars and root handlers."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
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
