"""Backfill: a flow's history fetched in chunks that fit the provider, resumable after a crash.

``finappd backfill FLOW --start DATE [--end DATE] [--tickers ...]`` splits each ticker's
range into chunks of at most the chain's ``max_range_days`` (the smallest any of its
providers declares), anchored at ``--start`` so a re-run plans the same chunks. Every
chunk is a row of ``backfill_chunks`` (pending → done | failed); a chunk is marked done
in the same transaction as its rows, so after a crash (even ``kill -9``) a re-run skips
exactly the chunks whose data landed and asks only for the others.

The chunks are the work items of the ordinary lane fan-out (:func:`run_flow_once`): the
same providers, semaphores, rate windows and quota ledger as the daemon's runs, and a
``runs`` row with trigger ``backfill``. ``backfill.progress`` lines (done/total, rate,
ETA) are logged every few seconds, and on a terminal one line on stderr keeps updating.

The same machinery re-fetches history after a new split (:func:`refetch_splits`),
without persisting chunks: the split itself is the marker (flows/actions.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TextIO

import structlog

from finappd.errors import ConfigError
from finappd.flows.actions import Refetch
from finappd.flows.kinds import flow_kind
from finappd.flows.run import RunSummary, TickerResult, run_flow_once
from finappd.providers import BaseProvider
from finappd.store import Store, Writer
from finappd.store.market import chunk_rows, ensure_chunks, mark_chunk, write_splits

__all__ = [
    "Chunk",
    "Progress",
    "chunk_fetch",
    "chunk_ranges",
    "plan_chunks",
    "range_days",
    "refetch_splits",
    "run_backfill",
    "run_chunks",
    "todo_chunks",
]

log = structlog.get_logger(__name__)

#: A backfill may run for days on a 5/minute plan; its deadline only stops a hang.
BACKFILL_DEADLINE = 30 * 86400.0

ChunkFetch = Callable[["Chunk"], Awaitable[TickerResult]]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Dates ``start..end`` (inclusive) of one ticker: one request's worth of history."""

    symbol: str
    start: date
    end: date

    @property
    def key(self) -> str:
        """The work item's name in the run (and in ``fetch_errors.symbol``)."""
        return f"{self.symbol} {self.start}..{self.end}"


def chunk_ranges(start: date, end: date, max_days: int | None) -> list[tuple[date, date]]:
    """``start..end`` cut into consecutive inclusive ranges of at most ``max_days`` days."""
    if end < start:
        return []
    if max_days is None:
        return [(start, end)]
    if max_days < 1:
        raise ValueError(f"max_days must be at least 1, got {max_days}")
    ranges: list[tuple[date, date]] = []
    first = start
    while first <= end:
        last = min(first + timedelta(days=max_days - 1), end)
        ranges.append((first, last))
        first = last + timedelta(days=1)
    return ranges


def plan_chunks(
    tickers: Sequence[str], start: date, end: date, max_days: int | None
) -> list[Chunk]:
    """Every ticker's chunks, ticker by ticker, oldest first."""
    ranges = chunk_ranges(start, end, max_days)
    return [Chunk(symbol, a, b) for symbol in tickers for a, b in ranges]


def range_days(providers: Sequence[BaseProvider]) -> int | None:
    """The chunk size a chain allows: the smallest ``max_range_days`` any provider declares."""
    declared = [p.max_range_days for p in providers if p.max_range_days is not None]
    return min(declared, default=None)


def todo_chunks(plan: Sequence[Chunk], done: dict[tuple[str, date], date]) -> list[Chunk]:
    """The chunks of ``plan`` not yet done; ``done`` maps (symbol, start) to the end it covered.

    A done chunk whose stored end is earlier than planned (an open-ended backfill run again
    on a later day) is not done: its range grew.
    """
    return [c for c in plan if done.get((c.symbol, c.start), date.min) < c.end]


def chunk_fetch(kind: str, providers: Sequence[BaseProvider]) -> ChunkFetch:
    """How one chunk of a flow of ``kind`` is fetched (its kind's ``history``)."""
    history = flow_kind(kind).history
    if history is None:
        raise ConfigError("kind", f"a {kind} flow has no history to backfill")

    async def fetch(chunk: Chunk) -> TickerResult:
        return await history(providers, chunk.start, chunk.end)(chunk.symbol)

    return fetch


class Progress:
    """Chunks done of a total: ``backfill.progress`` log lines and, on a TTY, one stderr line."""

    def __init__(self, total: int, done: int, *, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = done
        self.failed = 0
        self._start_done = done
        self._started = time.monotonic()
        self.stream = stream if stream is not None and stream.isatty() else None

    def __repr__(self) -> str:
        return f"<Progress {self.done}/{self.total} failed={self.failed}>"

    def figures(self, now: float | None = None) -> dict[str, float | int | None]:
        """done, total, failed, chunks per second this session, and the ETA in seconds."""
        elapsed = (time.monotonic() if now is None else now) - self._started
        rate = (self.done + self.failed - self._start_done) / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done - self.failed
        return {
            "done": self.done,
            "total": self.total,
            "failed": self.failed,
            "rate_per_s": round(rate, 2),
            "eta_s": round(left / rate, 1) if rate else None,
        }

    def tick(self, ok: bool) -> None:
        """Count one chunk finished and refresh the terminal line."""
        if ok:
            self.done += 1
        else:
            self.failed += 1
        if self.stream is not None:
            f = self.figures()
            eta = "?" if f["eta_s"] is None else f"{f['eta_s']:.0f}s"
            self.stream.write(
                f"\rbackfill {f['done']}/{f['total']} chunks, {f['failed']} failed, "
                f"{f['rate_per_s']}/s, ETA {eta}   "
            )
            self.stream.flush()

    async def log_every(self, seconds: float) -> None:
        """Log ``backfill.progress`` every ``seconds`` until cancelled."""
        while True:
            await asyncio.sleep(seconds)
            log.info("backfill.progress", **self.figures())

    def close(self) -> None:
        """End the terminal line."""
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


async def run_chunks(
    *,
    flow: str,
    trigger: str,
    chunks: Sequence[Chunk],
    fetch_chunk: ChunkFetch,
    providers: Sequence[BaseProvider],
    store: Store,
    writer: Writer,
    num_workers: int,
    progress: Progress,
    persist: bool,
    progress_every: float = 5.0,
) -> tuple[RunSummary, set[Chunk]]:
    """Fetch ``chunks`` through the lane fan-out; return the run and the chunks that failed.

    With ``persist``, a chunk is marked done in ``backfill_chunks`` in the transaction that
    writes its rows, and failed once the run has ended.
    """
    by_key = {c.key: c for c in chunks}
    failed: set[Chunk] = set()

    async def fetch(key: str) -> TickerResult:
        chunk = by_key[key]
        result = dataclasses.replace(await fetch_chunk(chunk), symbol=key)
        progress.tick(result.error_kind is None)
        if result.error_kind is not None:
            failed.add(chunk)
            return result
        if not persist:
            return result
        inner, count = result.write, len(result.bars)

        def write(store: Store, now: datetime) -> int:
            rows = inner(store, now) if inner is not None else 0
            mark_chunk(store, flow, chunk.symbol, chunk.start, status="done", rows=count, now=now)
            return rows

        return dataclasses.replace(result, write=write)

    logger = asyncio.create_task(progress.log_every(progress_every), name=f"backfill-{flow}")
    try:
        summary = await run_flow_once(
            flow=flow,
            trigger=trigger,
            tickers=list(by_key),
            num_workers=num_workers,
            deadline=BACKFILL_DEADLINE,
            fetch=fetch,
            providers=providers,
            store=store,
            writer=writer,
        )
    finally:
        logger.cancel()
        progress.close()
    if persist and failed:
        now = datetime.now(UTC)
        for chunk in sorted(failed, key=lambda c: c.key):
            await writer.call(
                mark_chunk, store, flow, chunk.symbol, chunk.start, status="failed", rows=0, now=now
            )
    log.info("backfill.progress", **progress.figures())
    return summary, failed


async def run_backfill(
    *,
    flow: str,
    kind: str,
    tickers: Sequence[str],
    start: date,
    end: date,
    providers: Sequence[BaseProvider],
    store: Store,
    writer: Writer,
    num_workers: int,
    stream: TextIO | None = None,
    progress_every: float = 5.0,
) -> RunSummary:
    """Backfill ``tickers`` of ``flow`` over ``start..end``, skipping chunks already done."""
    fetch_chunk = chunk_fetch(kind, providers)
    plan = plan_chunks(tickers, start, end, range_days(providers))
    now = datetime.now(UTC)
    await writer.call(ensure_chunks, store, flow, [(c.symbol, c.start, c.end) for c in plan], now)
    rows = await writer.call(chunk_rows, store, flow)
    done = {(r.symbol, r.start): r.end for r in rows if r.status == "done"}
    todo = todo_chunks(plan, done)
    log.info(
        "backfill.started",
        flow=flow,
        start=start.isoformat(),
        end=end.isoformat(),
        tickers=len(tickers),
        chunks=len(plan),
        already_done=len(plan) - len(todo),
        chunk_days=range_days(providers),
    )
    progress = Progress(len(plan), len(plan) - len(todo), stream=stream or sys.stderr)
    summary, _ = await run_chunks(
        flow=flow,
        trigger="backfill",
        chunks=todo,
        fetch_chunk=fetch_chunk,
        providers=providers,
        store=store,
        writer=writer,
        num_workers=num_workers,
        progress=progress,
        persist=True,
        progress_every=progress_every,
    )
    return summary


async def refetch_splits(
    *,
    flow: str,
    pending: Sequence[Refetch],
    providers: Sequence[BaseProvider],
    store: Store,
    writer: Writer,
    num_workers: int,
) -> RunSummary | None:
    """Re-fetch the history each new split put on an old basis, then record the splits."""
    if not pending:
        return None
    by_name = {p.name: p for p in providers}
    summary: RunSummary | None = None
    for name in dict.fromkeys(r.provider for r in pending):
        provider = by_name[name]
        mine = [r for r in pending if r.provider == name]
        size = provider.max_range_days
        chunks = [c for r in mine for c in plan_chunks([r.symbol], r.start, r.end, size)]
        for r in mine:
            log.info(
                "split.refetch",
                symbol=r.symbol,
                provider=name,
                start=r.start.isoformat(),
                end=r.end.isoformat(),
                chunks=sum(1 for c in chunks if c.symbol == r.symbol),
            )
        summary, failed = await run_chunks(
            flow=flow,
            trigger="split-refetch",
            chunks=chunks,
            fetch_chunk=chunk_fetch("daily_bars", [provider]),
            providers=[provider],
            store=store,
            writer=writer,
            num_workers=num_workers,
            progress=Progress(len(chunks), 0),
            persist=False,
        )
        broken = {c.symbol for c in failed}
        splits = [s for r in mine if r.symbol not in broken for s in r.splits]
        # Until its history is re-fetched a split stays unrecorded, so the next run retries.
        await writer.call(write_splits, store, splits, provider=name, fetched_at=datetime.now(UTC))
    return summary
