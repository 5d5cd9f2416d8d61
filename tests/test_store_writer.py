"""Tests for finappd.store.Writer: one thread, in order, errors delivered (both backends)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from finappd.errors import StoreError
from finappd.store import Writer
from tests.conftest import MakeStore

NOW = datetime(2025, 3, 14, 21, 30, tzinfo=UTC)


@pytest.fixture
def writer(make_store: MakeStore) -> Iterator[Writer]:
    """A Writer over an open store (SQLite, then PostgreSQL); closed at teardown."""
    writer = Writer(make_store())
    yield writer
    writer.close()


async def test_writer_runs_calls_in_order_on_one_thread(writer: Writer) -> None:
    """Writer runs every call on the same non-main thread, in submission order."""
    seen: list[tuple[int, str]] = []

    def record(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        return i * 2

    results = [await writer.call(record, i) for i in range(3)]
    run_id = await writer.call(writer.store.start_run, "daily", "cron", 1, now=NOW)
    assert results == [0, 2, 4]
    assert [i for i, _ in seen] == [0, 1, 2]
    assert len({name for _, name in seen}) == 1
    assert seen[0][1].startswith("finappd-writer")
    assert seen[0][1] != threading.main_thread().name
    assert await writer.call(writer.store.run, run_id) is not None


async def test_writer_keeps_submission_order_when_calls_overlap(writer: Writer) -> None:
    """Calls submitted concurrently still run one at a time in the order submitted."""
    order: list[int] = []
    await asyncio.gather(*(writer.call(order.append, i) for i in range(20)))
    assert order == list(range(20))


async def test_writer_propagates_store_errors(writer: Writer) -> None:
    """A StoreError raised on the writer thread reaches the awaiting caller."""
    with pytest.raises(StoreError, match=r"(?i)foreign key"):
        await writer.call(writer.store.record_error, 7, "AAPL", "sim", "auth", "x", NOW)


async def test_writer_repr_counts_calls_and_close_drains(writer: Writer) -> None:
    """repr shows submitted and pending calls; close() waits for queued ones."""
    await writer.call(int)
    assert repr(writer).startswith("<Writer open submitted=1 pending=0 store=<")
    assert f"{writer.store!r}".split()[1] == "open"
    gate = threading.Event()
    blocked = asyncio.ensure_future(writer.call(gate.wait, 5))
    await asyncio.sleep(0)
    assert "pending=1" in repr(writer)
    gate.set()
    assert await blocked is True
    writer.close()
    assert repr(writer).startswith("<Writer closed submitted=2 pending=0")
