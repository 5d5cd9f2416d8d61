"""One flow run: record it, fan tickers out over lanes, stream results to one writer, summarise.

The run owns three things and always cleans them up: the fan-out workflow (the
engine, one event per lane), the writer task (drains a bounded queue, so memory
stays flat however many tickers there are), and the ``runs`` row, which ends
``ok``, ``partial``, ``failed`` or ``cancelled`` with counts, whatever happens.

Progress goes out as :class:`RunProgress` events to an optional listener: one when the
run's row is opened, then from inside the engine (each lane writes to its step's
``ctx.write_event_to_stream`` at most every :data:`PUBLISH_EVERY` seconds and the run
reads them back from ``handler.stream_events()``), and one ``final`` event once the
row is closed, whatever the outcome. The first and the last fall outside the engine's
run, which starts after the row is opened and is over before it is closed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import Field
from workflows.events import Event
from workflows.handler import WorkflowHandler

from finappd.errors import FinappdError, ProviderError
from finappd.flows.fanout import Publish, fanout_workflow
from finappd.instruments import InstrumentBook
from finappd.metrics import Gauge
from finappd.providers import BaseProvider
from finappd.records import Bar
from finappd.store import Store, Writer

__all__ = [
    "Fetch",
    "RunEvents",
    "RunProgress",
    "RunSummary",
    "TickerResult",
    "provider_failure",
    "run_flow_once",
]

log = structlog.get_logger(__name__)

#: Seconds between ``flow.progress`` lines during a long run.
PROGRESS_EVERY = 5.0
#: Seconds between two :class:`RunProgress` events a run's lanes write to the engine stream.
PUBLISH_EVERY = 0.5
#: Seconds the engine stream may take to deliver its last events once the workflow is over.
STREAM_DRAIN_S = 2.0
_DONE = object()


@dataclass(frozen=True, slots=True)
class TickerResult:
    """What one ticker's fetch produced: bars, or an error kind and reason."""

    symbol: str
    provider: str
    bars: Sequence[Bar] = ()
    error_kind: str | None = None
    error: str | None = None
    #: The basis of the bars' OHLC (``bars.adjustment``): ``none``, ``split`` or unknown.
    adjustment: str | None = None
    #: Rows other than bars (quotes, FX, actions, chunk status): written on the writer
    #: thread in the batch's transaction, only when the fetch succeeded; returns rows.
    write: Callable[[Store, datetime], int] | None = None


#: Fetch one ticker; must not raise for a provider failure (return an error result).
Fetch = Callable[[str], Awaitable[TickerResult]]


@dataclass(slots=True)
class RunSummary:
    """The outcome of one run, as stored in ``runs`` and printed by ``run-once``."""

    run_id: int
    flow: str
    trigger: str
    status: str = "running"
    tickers_total: int = 0
    tickers_ok: int = 0
    tickers_failed: int = 0
    rows_written: int = 0
    error: str | None = None
    duration_s: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


class RunProgress(Event):
    """A run's counts so far (``final``: its outcome, once its ``runs`` row is closed)."""

    run_id: int
    flow: str
    trigger: str
    status: str = "running"
    tickers_total: int = 0
    tickers_ok: int = 0
    tickers_failed: int = 0
    rows_written: int = 0
    failures: dict[str, int] = Field(default_factory=dict)
    final: bool = False

    @classmethod
    def of(cls, summary: RunSummary, *, final: bool = False) -> RunProgress:
        """The event showing ``summary`` as it is now."""
        return cls(
            run_id=summary.run_id,
            flow=summary.flow,
            trigger=summary.trigger,
            status=summary.status,
            tickers_total=summary.tickers_total,
            tickers_ok=summary.tickers_ok,
            tickers_failed=summary.tickers_failed,
            rows_written=summary.rows_written,
            failures=dict(summary.failures),
            final=final,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return self.model_dump(mode="json")


#: Receives a run's progress events; called on the event loop, must not block or raise.
RunEvents = Callable[[RunProgress], None]


def _now() -> datetime:
    return datetime.now(UTC)


def _write_results(
    store: Store, run_id: int, results: list[TickerResult], book: InstrumentBook | None = None
) -> int:
    """Write a batch's errors and bars in one transaction; runs on the writer thread.

    One commit per batch, not per ticker: a commit costs more than a ticker's ~10 rows
    (bench/upsert.py: 0.39x raw executemany with a commit per ticker), and the bars
    go to SQLite in one ``write_bars`` per provider, i.e. in a few multi-row
    statements. Every ticker's rows still land whole or not at all, and the batch's
    outcomes are counted only once the commit is done, so a failed batch is
    recorded as failed as a whole.

    ``book`` puts each ticker's bars in major units and keeps its ``instruments`` row
    and not-found streak (finappd/instruments.py); the default declares nothing and
    counts no streaks (a backfill's chunks are not runs of a ticker).
    """
    rows = 0
    now = _now()
    book = book or InstrumentBook(streaks=False)
    by_provider: dict[tuple[str, str | None], list[Bar]] = {}
    with store.transaction():
        landed = [r for r in results if r.error_kind is None and r.bars]
        # By the bars' symbol: a backfill's work item is a chunk ("AAPL 2015-01-01..").
        items = [(r.bars[0].symbol, r.provider, r.bars) for r in landed]
        settled = book.settle_batch(store, items, now)
        major = {id(r): bars for r, bars in zip(landed, settled, strict=True)}
        for result in results:
            if result.error_kind is None:
                key = (result.provider, result.adjustment)
                by_provider.setdefault(key, []).extend(major.get(id(result), ()))
                if result.write is not None:
                    rows += result.write(store, now)
            else:
                if result.error_kind == "not_found":
                    book.not_found(store, result.symbol, result.provider, now)
                store.record_error(
                    run_id,
                    result.symbol,
                    result.provider,
                    result.error_kind,
                    result.error or "",
                    now,
                )
        # One upsert call per provider, so SQLite gets the batch's rows in few statements.
        for (provider, adjustment), bars in by_provider.items():
            rows += store.write_bars(bars, provider=provider, fetched_at=now, adjustment=adjustment)
    return rows


def _status(summary: RunSummary) -> str:
    if summary.tickers_failed == 0:
        return "ok"
    return "partial" if summary.tickers_ok else "failed"


class _Run:
    """The mutable state of one run while it is in progress."""

    def __init__(
        self,
        summary: RunSummary,
        store: Store,
        writer: Writer,
        fetch: Fetch,
        provider: str,
        queue_size: int,
        book: InstrumentBook | None = None,
        events: RunEvents | None = None,
    ) -> None:
        self.summary = summary
        self.book = book
        self.events = events
        self._published = 0.0  # time.monotonic() of the last progress event
        self.provider = provider
        self.store = store
        self.writer = writer
        self.fetch = fetch
        self.results: asyncio.Queue[TickerResult | object] = asyncio.Queue(maxsize=queue_size)
        self.done: set[str] = set()
        self.fetch_gauge = Gauge("fetch")
        self.write_gauge = Gauge("write")

    async def lane(self, work: deque[str], publish: Publish) -> None:
        """Fetch tickers from ``work`` one at a time until it is empty; ``publish`` progress."""
        while work:
            symbol = work.popleft()
            with self.fetch_gauge.active():
                try:
                    result = await self.fetch(symbol)
                except Exception as exc:  # a bug met by one ticker must not end the run
                    log.exception("ticker.crashed", symbol=symbol)
                    reason = f"{type(exc).__name__}: {exc}"
                    result = TickerResult(symbol, self.provider, error_kind="crashed", error=reason)
            await self.results.put(result)
            self._publish(publish)

    def _publish(self, publish: Publish) -> None:
        """Write the run's counts to the engine stream, at most every PUBLISH_EVERY seconds."""
        if self.events is None:
            return
        now = time.monotonic()
        if now - self._published >= PUBLISH_EVERY:
            self._published = now
            publish(RunProgress.of(self.summary))

    async def write_loop(self) -> None:
        """Drain results in batches (whatever is queued) and write them on the writer thread."""
        finished = False
        while not finished:
            batch: list[TickerResult] = []
            item = await self.results.get()
            while True:
                if item is _DONE:
                    finished = True
                    break
                assert isinstance(item, TickerResult)
                batch.append(item)
                if self.results.empty():
                    break
                item = self.results.get_nowait()
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[TickerResult]) -> None:
        try:
            with self.write_gauge.active():
                rows = await self.writer.call(
                    _write_results, self.store, self.summary.run_id, batch, self.book
                )
        except FinappdError as exc:
            # A failed write fails these tickers but never loses the others or the run row.
            log.error("store.write_failed", error=str(exc), tickers=len(batch))
            self.summary.error = self.summary.error or f"store: {exc}"
            batch = [
                TickerResult(r.symbol, r.provider, error_kind="store", error=str(exc))
                for r in batch
            ]
            rows = 0
        self.summary.rows_written += rows
        for result in batch:
            self.done.add(result.symbol)
            if result.error_kind is None:
                self.summary.tickers_ok += 1
            else:
                self.summary.tickers_failed += 1
                kinds = self.summary.failures
                kinds[result.error_kind] = kinds.get(result.error_kind, 0) + 1
                log.warning(
                    "ticker.failed",
                    symbol=result.symbol,
                    provider=result.provider,
                    kind=result.error_kind,
                    reason=result.error,
                )

    async def finish(
        self,
        tickers: Sequence[str],
        cancelled: bool,
        elapsed: float,
        providers: Sequence[BaseProvider],
        unreached: str = "deadline",
    ) -> None:
        """Record tickers never reached (as ``unreached``, or ``cancelled``), close the
        ``runs`` row, log the run's metrics."""
        summary = self.summary
        missing = [s for s in tickers if s not in self.done]
        if missing:
            kind = "cancelled" if cancelled else unreached
            await self._write(
                [
                    TickerResult(s, self.provider, error_kind=kind, error=summary.error)
                    for s in missing
                ]
            )
        summary.status = "cancelled" if cancelled else _status(summary)
        summary.duration_s = round(elapsed, 3)
        try:
            await self.writer.call(
                self.store.finish_run,
                summary.run_id,
                status=summary.status,
                tickers_ok=summary.tickers_ok,
                tickers_failed=summary.tickers_failed,
                rows_written=summary.rows_written,
                error=summary.error,
                now=_now(),
            )
        except FinappdError as exc:
            # The row stays 'running' until a later start marks it interrupted; say so now.
            log.error(
                "store.write_failed", operation="finish_run", status=summary.status, error=str(exc)
            )
            raise
        emit = log.info if summary.status == "ok" else log.warning
        emit("run.finished", **summary.as_dict())
        for gauge in (self.fetch_gauge, self.write_gauge):
            log.info("step.metrics", step=gauge.name, **gauge.summary())
        for provider in providers:
            log.info("provider.metrics", **provider.metrics())

    async def progress_loop(self) -> None:
        """Log ``flow.progress`` every few seconds while the run lasts."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            done = len(self.done)
            elapsed = time.monotonic() - started
            rate = done / elapsed if elapsed else 0.0
            left = self.summary.tickers_total - done
            log.info(
                "flow.progress",
                done=done,
                total=self.summary.tickers_total,
                rate_per_s=round(rate, 1),
                eta_s=round(left / rate, 1) if rate else None,
                in_flight=self.fetch_gauge.in_flight,
            )


async def _relay(handler: WorkflowHandler, events: RunEvents) -> None:
    """Hand the run's progress events from the engine stream to ``events``."""
    async for event in handler.stream_events():
        if isinstance(event, RunProgress):
            events(event)


async def _stop_relay(relay: asyncio.Task[None] | None) -> None:
    """Let the relay deliver what the stream still holds, then end it; log what broke it."""
    if relay is None:
        return
    await asyncio.wait({relay}, timeout=STREAM_DRAIN_S)
    relay.cancel()
    try:
        await relay
    except asyncio.CancelledError:
        pass
    except Exception:  # a listener's bug must not fail the run
        log.exception("run.events_failed")


async def run_flow_once(
    *,
    flow: str,
    trigger: str,
    tickers: Sequence[str],
    num_workers: int,
    deadline: float,
    fetch: Fetch,
    providers: Sequence[BaseProvider],
    store: Store,
    writer: Writer,
    instruments: InstrumentBook | None = None,
    events: RunEvents | None = None,
    daemon: str | None = None,
    fire_at: datetime | None = None,
) -> RunSummary:
    """Run one flow over ``tickers`` within ``deadline`` seconds and record it.

    ``daemon`` and ``fire_at`` go into its ``runs`` row: who ran it, for which scheduled fire.

    ``instruments`` carries the config's ``[instruments]`` declarations and delisting
    policy to the writer (default: none declared, no not-found streak counted).
    ``events`` receives the run's :class:`RunProgress` events, the last one ``final``.
    """
    started = time.monotonic()
    try:
        run_id = await writer.call(
            store.start_run, flow, trigger, len(tickers), _now(), daemon=daemon, fire_at=fire_at
        )
    except FinappdError as exc:
        # No run row, so nothing else can record it: the log line is the record.
        log.error("store.write_failed", flow=flow, operation="start_run", error=str(exc))
        raise
    summary = RunSummary(run_id=run_id, flow=flow, trigger=trigger, tickers_total=len(tickers))
    structlog.contextvars.bind_contextvars(run_id=run_id, flow=flow)
    log.info("run.started", trigger=trigger, tickers=len(tickers), num_workers=num_workers)
    run = _Run(
        summary,
        store,
        writer,
        fetch,
        providers[0].name,
        queue_size=max(2 * num_workers, 64),
        book=instruments,
        events=events,
    )
    if events is not None:
        events(RunProgress.of(summary))
    work = deque(tickers)
    lanes = max(1, min(num_workers, len(tickers)))
    workflow = fanout_workflow(num_workers)(
        lanes=lanes, work=lambda _lane, publish: run.lane(work, publish), timeout=None
    )
    writer_task = asyncio.create_task(run.write_loop(), name=f"finappd-writer-{flow}")
    progress_task = asyncio.create_task(run.progress_loop(), name=f"finappd-progress-{flow}")
    cancelled: asyncio.CancelledError | None = None
    unreached = "deadline"
    handler = workflow.run()
    relay = None if events is None else asyncio.create_task(_relay(handler, events))
    try:
        async with asyncio.timeout(deadline):
            await handler
    except TimeoutError:
        summary.error = f"deadline of {deadline:g}s exceeded"
    except asyncio.CancelledError as exc:
        cancelled = exc
        summary.error = "cancelled"
    except Exception as exc:  # a run must always end recorded, whatever broke
        summary.error = f"{type(exc).__name__}: {exc}"
        unreached = "crashed"
        log.exception("run.crashed")
    finally:
        work.clear()
        if not handler.is_done():
            await handler.cancel_run()
        progress_task.cancel()
        await run.results.put(_DONE)
        await writer_task
        await _stop_relay(relay)
    try:
        await run.finish(
            tickers, cancelled is not None, time.monotonic() - started, providers, unreached
        )
    finally:
        if events is not None:
            events(RunProgress.of(summary, final=True))
    structlog.contextvars.unbind_contextvars("run_id", "flow")
    if cancelled is not None:
        raise cancelled
    return summary


def provider_failure(symbol: str, provider: str, exc: ProviderError) -> TickerResult:
    """The result recording a provider's typed failure for ``symbol``."""
    return TickerResult(symbol, provider, error_kind=exc.kind, error=str(exc))
