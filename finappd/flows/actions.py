"""Corporate actions met on the way: dividends and splits stored, new splits re-fetched.

A provider whose bar response already carries the actions (see
``BaseProvider.bars_and_actions``) gives them to the daily fetch at no extra request,
and they are written in the same transaction as the ticker's bars. A provider that
serves actions only from separate endpoints (more requests per ticker) stores none
from a daily flow.

A split is *new* when its (symbol, ex_date) is not in ``splits`` yet. Providers rewrite
all older prices to the post-split basis (PROVIDERS.md §10.7), so stored bars older than
the window just fetched are now on the wrong basis: :class:`SplitWatch` queues a
re-fetch of them (``split.detected``), which the runtime runs in chunks through the same
providers (``split.refetch``). The new split is written only once that re-fetch has
landed, so a crash in between makes the next run detect it, and re-fetch, again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import structlog

from finappd.records import Dividend, Split
from finappd.store import Store
from finappd.store.market import first_bar_day, known_splits, write_dividends, write_splits

__all__ = ["Actions", "ActionsHook", "Refetch", "SplitWatch", "store_actions"]

log = structlog.get_logger(__name__)

#: Dividends and splits found in one response.
Actions = tuple[list[Dividend], list[Split]]
#: Extra rows to write with a ticker's bars (``TickerResult.write``).
ExtraWrite = Callable[[Store, datetime], int]
#: ``(symbol, provider, start of the fetched window, actions)`` → the write storing them.
ActionsHook = Callable[[str, str, date, Actions], ExtraWrite | None]


def store_actions(symbol: str, provider: str, start: date, actions: Actions) -> ExtraWrite | None:
    """Store the actions as they are (backfill: the history fetched is on today's basis)."""
    dividends, splits = actions
    if not dividends and not splits:
        return None

    def write(store: Store, now: datetime) -> int:
        rows = write_dividends(store, dividends, provider=provider, fetched_at=now)
        return rows + write_splits(store, splits, provider=provider, fetched_at=now)

    return write


@dataclass(frozen=True, slots=True)
class Refetch:
    """Stored daily bars of ``symbol`` from ``provider`` in ``start..end`` to fetch again,
    because of the new ``splits`` (written once the re-fetch has landed)."""

    symbol: str
    provider: str
    start: date
    end: date
    splits: tuple[Split, ...]


class SplitWatch:
    """The daily flow's actions hook: stores actions, queues a re-fetch for each new split."""

    def __init__(self) -> None:
        self.pending: list[Refetch] = []

    def __repr__(self) -> str:
        return f"<SplitWatch pending={[r.symbol for r in self.pending]}>"

    def __call__(
        self, symbol: str, provider: str, start: date, actions: Actions
    ) -> ExtraWrite | None:
        """The write for one ticker's actions (runs on the writer thread, in the batch)."""
        dividends, splits = actions
        if not dividends and not splits:
            return None

        def write(store: Store, now: datetime) -> int:
            rows = write_dividends(store, dividends, provider=provider, fetched_at=now)
            known = known_splits(store, symbol) if splits else set()
            new = [s for s in splits if s.ex_date not in known]
            first = first_bar_day(store, symbol, provider) if new else None
            if new and first is not None and first < start:
                for split in new:
                    log.info(
                        "split.detected",
                        symbol=symbol,
                        provider=provider,
                        ex_date=split.ex_date.isoformat(),
                        ratio=f"{split.numerator:g}:{split.denominator:g}",
                    )
                end = start - timedelta(days=1)
                self.pending.append(Refetch(symbol, provider, first, end, tuple(new)))
                splits_now = [s for s in splits if s.ex_date in known]
            else:
                splits_now = splits  # nothing stored before the window: no basis to fix
            return rows + write_splits(store, splits_now, provider=provider, fetched_at=now)

        return write
