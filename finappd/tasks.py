"""The one owner of the daemon's background tasks: flow runs, reloads, the watchdog.

Every task is started here with a name and a kind, so none is ever left unreferenced
(asyncio keeps only a weak reference to a running task); its exception, if any, is
logged once under the event its starter chose; and at shutdown each kind is either
drained with a deadline (runs: :meth:`~BackgroundTasks.wait` the grace period, then
:meth:`~BackgroundTasks.cancel`) or cancelled now (reloads, the watchdog), and whatever
is left by :meth:`~BackgroundTasks.close`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Coroutine
from typing import Any, TypeVar

import structlog

__all__ = ["BackgroundTasks"]

log = structlog.get_logger(__name__)

T = TypeVar("T")


class BackgroundTasks:
    """Start, name, track, log the failures of, drain and cancel a daemon's tasks."""

    def __init__(self) -> None:
        self._kinds: dict[asyncio.Task[Any], str] = {}

    def __repr__(self) -> str:
        names = sorted(task.get_name() for task in self._kinds)
        return f"<BackgroundTasks {len(names)} running {names}>"

    def __len__(self) -> int:
        return len(self._kinds)

    def start(
        self, coro: Coroutine[Any, Any, T], *, name: str, kind: str, failure: str, **context: Any
    ) -> asyncio.Task[T]:
        """Run ``coro`` as task ``name`` of ``kind``; an exception it ends with is logged as
        one error event ``failure`` with ``context``."""
        task = asyncio.create_task(coro, name=name)
        self._kinds[task] = kind
        task.add_done_callback(lambda t: self._finished(t, failure, context))
        return task

    def _finished(self, task: asyncio.Task[Any], failure: str, context: dict[str, Any]) -> None:
        self._kinds.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error(failure, error=f"{type(exc).__name__}: {exc}", **context)

    def of(self, kind: str) -> list[asyncio.Task[Any]]:
        """The running tasks of ``kind``."""
        return [task for task, k in self._kinds.items() if k == kind]

    async def cancel(self, tasks: Collection[asyncio.Task[Any]]) -> None:
        """Cancel ``tasks`` now and wait until they have ended."""
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait(
        self, tasks: Collection[asyncio.Task[Any]], within: float
    ) -> set[asyncio.Task[Any]]:
        """Wait up to ``within`` seconds for ``tasks`` to finish; return those still running
        (to :meth:`cancel`: together, a drain with a deadline)."""
        if not tasks:
            return set()
        _, pending = await asyncio.wait(tasks, timeout=within)
        return pending

    async def close(self) -> None:
        """Cancel every task still running (the end of the daemon) and wait for them."""
        await self.cancel(list(self._kinds))
