"""An APScheduler trigger firing at each exchange's session close plus a settle delay.

A flow configured with ``at_close = "30m"`` runs once per trading session of each of
its exchanges, ``settle`` after the close (the early close on a half day), and never
on a weekend or holiday. With several exchanges it fires after each one's close.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from finappd.calendar import Exchange, next_close

__all__ = ["CloseTrigger"]


class CloseTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 is untyped
    """Fires at ``close + settle`` of every session of ``exchanges``."""

    def __init__(self, exchanges: Sequence[Exchange], settle: timedelta) -> None:
        if not exchanges:
            raise ValueError("a close trigger needs at least one exchange")
        self.exchanges = tuple(dict.fromkeys(exchanges))
        self.settle = settle

    def __repr__(self) -> str:
        codes = ",".join(e.code for e in self.exchanges)
        return f"<CloseTrigger exchanges={codes} settle={self.settle}>"

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first close + settle of any exchange at or after ``now`` (after the previous)."""
        after = now - timedelta(microseconds=1)
        if previous_fire_time is not None:
            after = max(after, previous_fire_time)
        return min(next_close(e, after, self.settle) for e in self.exchanges)
