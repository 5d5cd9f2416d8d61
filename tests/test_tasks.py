"""BackgroundTasks: every daemon task named and tracked, failures logged, drained or cancelled."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from finappd.tasks import BackgroundTasks


async def test_a_task_is_tracked_by_kind_until_it_ends() -> None:
    """A started task is listed under its kind and name while it runs, and forgotten after."""
    tasks = BackgroundTasks()
    release = asyncio.Event()
    task = tasks.start(release.wait(), name="run-eod", kind="run", failure="flow.crashed")
    assert task.get_name() == "run-eod"
    assert tasks.of("run") == [task]
    assert tasks.of("reload") == []
    assert "run-eod" in repr(tasks)
    release.set()
    assert await task is True
    assert len(tasks) == 0


async def test_a_failure_is_logged_once_with_its_event_and_context() -> None:
    """A task ending with an exception logs one error under the starter's event and fields."""
    tasks = BackgroundTasks()

    async def crash() -> None:
        raise RuntimeError("boom")

    with capture_logs() as logs:
        task = tasks.start(crash(), name="run-eod", kind="run", failure="flow.crashed", flow="eod")
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    assert logs == [
        {
            "event": "flow.crashed",
            "log_level": "error",
            "error": "RuntimeError: boom",
            "flow": "eod",
        }
    ]
    assert len(tasks) == 0


async def test_a_drain_waits_its_deadline_then_cancels_the_rest() -> None:
    """``wait`` returns the tasks still running after the deadline; ``cancel`` ends them; a
    cancellation is not logged as a failure."""
    tasks = BackgroundTasks()
    quick = tasks.start(asyncio.sleep(0), name="quick", kind="run", failure="flow.crashed")
    stuck = tasks.start(asyncio.Event().wait(), name="stuck", kind="run", failure="flow.crashed")
    with capture_logs() as logs:
        pending = await tasks.wait(tasks.of("run"), 0.05)
        assert pending == {stuck}
        await tasks.cancel(pending)
    assert quick.done()
    assert not quick.cancelled()
    assert stuck.cancelled()
    assert logs == []
    assert await tasks.wait([], 10) == set()


async def test_close_cancels_every_task_left() -> None:
    """``close`` (the daemon's end) cancels what is still running, of every kind."""
    tasks = BackgroundTasks()
    started = [
        tasks.start(asyncio.Event().wait(), name=kind, kind=kind, failure=f"{kind}.crashed")
        for kind in ("run", "reload", "watchdog")
    ]
    await tasks.close()
    assert all(task.cancelled() for task in started)
    assert len(tasks) == 0
