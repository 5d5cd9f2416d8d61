"""The one writer: every store call runs, in submission order, on one dedicated thread.

SQLite allows one writer at a time and ``sqlite3`` calls block, so the daemon never
touches the store from the event loop: it awaits ``Writer.call(store.method, ...)``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from finappd.store.store import Store

__all__ = ["Writer"]

P = ParamSpec("P")
T = TypeVar("T")


class Writer:
    """Runs store calls off the event loop, one at a time, in order, on one thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finappd-writer")
        self._submitted = 0
        self._finished = 0
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        pending = self._submitted - self._finished
        return (
            f"<Writer {state} submitted={self._submitted} pending={pending} store={self.store!r}>"
        )

    def _run(self, call: Callable[[], T]) -> T:
        """Run ``call`` on the writer thread, counting it as finished however it ends."""
        try:
            return call()
        finally:
            self._finished += 1

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the writer thread and return its result.

        Cancelling the awaiting task does not stop a call that has already started:
        its transaction still commits or rolls back as a whole.
        """
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._executor, self._run, functools.partial(fn, *args, **kwargs)
        )
        self._submitted += 1
        return await future

    def close(self) -> None:
        """Wait for queued calls to finish and stop the thread; the store stays open."""
        self._closed = True
        self._executor.shutdown(wait=True)
