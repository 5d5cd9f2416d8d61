"""The fan-out workflow: ``num_workers`` lanes, each pulling tickers until the work runs out.

LlamaIndex Workflows (2.26) copies its pending-event queue on every tick, so one
engine event per ticker costs O(N²) and ~0.4 ms of loop CPU each (DESIGN.md,
"Engine cost"). Here the engine carries one event per *lane*: the dispatch step
sends ``lanes`` events, the fetch step (``@step(num_workers=N)``) runs one lane per
worker, and every lane awaits ``work(lane)``, which pulls tickers from the run's
own queue. Exactly ``N`` tickers are in flight at the workflow level, and the
engine's cost no longer grows with the number of tickers.

The last lane to finish returns the ``StopEvent`` itself: no "lane done" event per lane
and no collecting step, which halves the engine's ticks. Each tick deep-copies state
that grows with the lanes in flight, so this is most of the run's fixed cost
(bench/engine.py: 50 lanes took 31 ms with a collecting step, 15 ms without).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent

__all__ = ["LaneEvent", "LaneWork", "LaneWorkflow", "Publish", "fanout_workflow"]

#: Writes an event to the run's engine stream (the fetch step's ``ctx.write_event_to_stream``).
Publish = Callable[[Event], None]
#: What one lane does: given its number and its step's publisher, process tickers until
#: none are left.
LaneWork = Callable[[int, Publish], Awaitable[None]]


class LaneEvent(Event):
    """Start lane ``lane``."""

    lane: int


class LaneWorkflow(Workflow):
    """A workflow given its lane count and the work each lane does; one instance per run."""

    def __init__(self, *, lanes: int, work: LaneWork, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lanes = lanes
        self.work = work
        self.running = lanes  # lanes not yet finished


@cache
def fanout_workflow(num_workers: int) -> type[LaneWorkflow]:
    """The workflow class whose fetch step runs ``num_workers`` lanes at once."""

    class FanOut(LaneWorkflow):
        """Dispatch lanes, run them ``num_workers`` at a time, stop when the last one is done."""

        @step
        async def dispatch(self, ctx: Context, ev: StartEvent) -> LaneEvent | None:
            """Send one event per lane; never one per ticker."""
            for lane in range(self.lanes):
                ctx.send_event(LaneEvent(lane=lane))
            return None

        @step(num_workers=num_workers)
        async def fetch(self, ctx: Context, ev: LaneEvent) -> StopEvent | None:
            """Run one lane to completion; the last lane to finish stops the workflow."""
            await self.work(ev.lane, ctx.write_event_to_stream)
            self.running -= 1
            return StopEvent(result=self.lanes) if self.running == 0 else None

    FanOut.__name__ = FanOut.__qualname__ = f"FanOut{num_workers}"
    return FanOut
