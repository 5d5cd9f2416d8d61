"""Helpers shared by the provider tests (this module holds no tests of its own)."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import aiohttp
import yarl
from aioresponses import aioresponses

from finappd.config import ProviderSettings, Settings
from finappd.flows import RunSummary
from finappd.providers import make_session
from finappd.providers.base import BaseProvider
from finappd.runtime import Runtime

__all__ = ["FakeClock", "mock_http", "provider_factory", "query", "run_eod"]

P = TypeVar("P", bound=BaseProvider)


class _SentWriter:
    """Stands in for the request writer of a response whose request is already sent."""

    output_size = 0


class _CompatClientResponse(aiohttp.ClientResponse):
    """A ClientResponse that aioresponses 0.7.9 can build on aiohttp >= 3.14."""

    def __init__(self, method: str, url: yarl.URL, **kwargs: Any) -> None:
        # aiohttp 3.14 added a required ``stream_writer`` that aioresponses does not pass
        # (pnuckowski/aioresponses#289, still open).
        kwargs.setdefault("stream_writer", _SentWriter())
        super().__init__(method, url, **kwargs)


_NEEDS_SHIM = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters


class FakeClock:
    """A monotonic clock that moves only when a caller sleeps on it: pauses cost no real time.

    ``sleep(s)`` yields to the loop once, then moves the clock to at least ``s`` after
    the moment the sleep began, so concurrent sleepers wake at their own deadlines.
    """

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __repr__(self) -> str:
        return f"<FakeClock now={self.now:.3f}>"

    def __call__(self) -> float:
        """The current fake monotonic time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of fake time (one trip through the event loop)."""
        deadline = self.now + max(0.0, seconds)
        await asyncio.sleep(0)
        self.now = max(self.now, deadline)


@contextmanager
def mock_http() -> Iterator[aioresponses]:
    """An ``aioresponses`` mock that works with the installed aiohttp."""
    with aioresponses() as mocked:
        if not _NEEDS_SHIM:
            yield mocked
            return
        with mock.patch("aioresponses.core.ClientResponse", _CompatClientResponse):
            yield mocked


@asynccontextmanager
async def provider_factory(
    cls: type[P], name: str, **options: Any
) -> AsyncIterator[Callable[..., P]]:
    """A factory of ``cls`` providers with ``options`` and tiny backoff; closes their sessions.

    The factory's keyword arguments override ``options`` (and the backoff) per provider;
    ``clock`` puts the provider's pause, retries, windows and breaker on a :class:`FakeClock`.
    """
    sessions: list[aiohttp.ClientSession] = []

    def factory(*, clock: FakeClock | None = None, **overrides: Any) -> P:
        settings: dict[str, Any] = {
            "backoff": timedelta(milliseconds=1),
            "backoff_max": timedelta(seconds=5),
            **options,
            **overrides,
        }
        session = make_session()
        sessions.append(session)
        if clock is None:
            return cls(name, ProviderSettings(**settings), session)
        return cls(name, ProviderSettings(**settings), session, clock=clock, sleep=clock.sleep)

    try:
        yield factory
    finally:
        for session in sessions:
            await session.close()


def query(tmp_path: Path, sql: str, *params: str, db: str = "f.sqlite3") -> list[tuple[Any, ...]]:
    """Run ``sql`` with ``params`` on the flow's DB (``tmp_path/db``) read-only."""
    with sqlite3.connect(f"file:{tmp_path / db}?mode=ro", uri=True) as conn:
        return conn.execute(sql, params).fetchall()


async def run_eod(settings: Settings) -> RunSummary:
    """Run the ``eod`` flow once, manually, in a Runtime of its own; its summary."""
    async with Runtime(settings) as runtime:
        return await runtime.run_flow("eod", "manual")
