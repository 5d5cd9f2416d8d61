"""The runs in progress in this daemon, as their progress events tell them, and who watches them.

Every run the daemon starts hands its :class:`~finappd.flows.run.RunProgress` events to
:meth:`RunBoard.publish`. The board keeps the newest event of each run in progress (so
``POST /flows/{name}/runs`` can answer with the run already going) and copies each event
to the queues of the clients watching that run (``GET /runs/{id}/events``). A watcher's
queue is bounded: a client that stops reading loses the oldest progress, never the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from finappd.flows.run import RunProgress

__all__ = ["WATCH_QUEUE", "RunBoard"]

#: Progress events a watcher may fall behind by before the oldest is dropped.
WATCH_QUEUE = 64


class RunBoard:
    """Newest progress of each run in progress, by flow and by run id; fan-out to watchers."""

    def __init__(self) -> None:
        self._by_flow: dict[str, RunProgress] = {}
        self._watchers: dict[int, set[asyncio.Queue[RunProgress]]] = {}
        self._listeners: set[Callable[[RunProgress], None]] = set()
        self.events = 0

    def __repr__(self) -> str:
        running = {flow: event.run_id for flow, event in self._by_flow.items()}
        watched = {run_id: len(queues) for run_id, queues in self._watchers.items()}
        return f"<RunBoard running={running} watchers={watched} events={self.events}>"

    def publish(self, event: RunProgress) -> None:
        """Take a run's event: remember it (forget the run at its end) and hand it on."""
        self.events += 1
        if event.final:
            if (current := self._by_flow.get(event.flow)) and current.run_id == event.run_id:
                del self._by_flow[event.flow]
        else:
            self._by_flow[event.flow] = event
        for queue in self._watchers.get(event.run_id, ()):
            if queue.full():
                queue.get_nowait()  # a slow reader loses old progress, never the end
            queue.put_nowait(event)
        for listener in list(self._listeners):
            listener(event)

    def running(self, flow: str) -> RunProgress | None:
        """The newest event of ``flow``'s run in progress, or None."""
        return self._by_flow.get(flow)

    def run(self, run_id: int) -> RunProgress | None:
        """The newest event of run ``run_id`` if it is in progress here, or None."""
        return next((e for e in self._by_flow.values() if e.run_id == run_id), None)

    @contextmanager
    def watch(self, run_id: int) -> Iterator[asyncio.Queue[RunProgress]]:
        """A queue receiving run ``run_id``'s events while inside."""
        queue: asyncio.Queue[RunProgress] = asyncio.Queue(maxsize=WATCH_QUEUE)
        self._watchers.setdefault(run_id, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._watchers[run_id]
            queues.discard(queue)
            if not queues:
                del self._watchers[run_id]

    @contextmanager
    def listen(self, listener: Callable[[RunProgress], None]) -> Iterator[None]:
        """Call ``listener`` with every event while inside (it must not block or raise)."""
        self._listeners.add(listener)
        try:
            yield
        finally:
            self._listeners.discard(listener)
