"""The quota ledger: requests per provider per quota day, counted before they are sent.

A provider's daily and monthly budgets (``daily_quota``, ``monthly_quota``, or
``N/day`` and ``N/month`` rates) are kept in SQLite (``provider_usage(provider, day,
requests)``) so a restart on the same day sees what was spent. The quota day is the
calendar date in the provider's ``quota_tz`` (UTC unless declared or configured), and
a month is the sum of its days. :meth:`QuotaLedger.take` refuses a request once the
budget is spent; otherwise it counts it in memory at once (so concurrent callers can
never overshoot) and in SQLite before returning, through the store's one writer
thread, batching the increments of callers that arrive while a write is under way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from finappd.errors import FinappdError, ProviderUnavailableError, QuotaExhaustedError

__all__ = ["QuotaLedger", "UsageBackend", "next_day_start", "next_month_start"]

log = structlog.get_logger(__name__)


class UsageBackend(Protocol):
    """Where usage persists: the store, reached off the event loop."""

    async def load(self, provider: str, day: date) -> tuple[int, int]:
        """Requests of ``provider`` on ``day`` and in ``day``'s month up to it."""
        ...

    async def add(self, provider: str, counts: Mapping[date, int]) -> None:
        """Add ``counts`` (requests per day) to ``provider``'s usage."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


def next_day_start(now: datetime, tz: ZoneInfo) -> datetime:
    """The next local midnight in ``tz`` after ``now``, as a UTC datetime."""
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(), tz).astimezone(UTC)


def next_month_start(now: datetime, tz: ZoneInfo) -> datetime:
    """Local midnight of the first day of the next month in ``tz``, as a UTC datetime."""
    today = now.astimezone(tz).date()
    first = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return datetime.combine(first, time(), tz).astimezone(UTC)


class QuotaLedger:
    """Daily and monthly request budgets of one provider, persisted through ``backend``."""

    def __init__(
        self,
        provider: str,
        *,
        daily: int | None,
        monthly: int | None,
        tz: str = "UTC",
        backend: UsageBackend | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.provider = provider
        self.daily = daily
        self.monthly = monthly
        self.tz = ZoneInfo(tz)
        self.backend = backend
        self.clock = clock
        self.day: date | None = None
        self.day_used = 0
        self.month_used = 0
        self.refused = 0
        self._load_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._pending: dict[date, int] = {}

    def __repr__(self) -> str:
        return (
            f"<QuotaLedger {self.provider} day={self.day} used={self.day_used}/{self.daily} "
            f"month={self.month_used}/{self.monthly} refused={self.refused}>"
        )

    def today(self, now: datetime | None = None) -> date:
        """The quota day of ``now`` (default: the clock's now)."""
        return (now or self.clock()).astimezone(self.tz).date()

    def spent(self) -> str | None:
        """Which budget is spent ("daily"/"monthly") for the loaded day, or None."""
        if self.daily is not None and self.day_used >= self.daily:
            return "daily"
        if self.monthly is not None and self.month_used >= self.monthly:
            return "monthly"
        return None

    def resets_at(self, which: str, now: datetime | None = None) -> datetime:
        """When the ``which`` ("daily"/"monthly") budget is next renewed, in UTC."""
        now = now or self.clock()
        if which == "monthly":
            return next_month_start(now, self.tz)
        return next_day_start(now, self.tz)

    async def refresh(self) -> None:
        """Load the current day's usage (a new day starts from what SQLite holds).

        Without a daily or monthly budget nothing needs loading: requests are still
        counted in SQLite (for ``finappd status``), but never refused.
        """
        today = self.today()
        if self.day == today:
            return
        async with self._load_lock:
            if self.day == today:
                return
            day_used = month_used = 0
            budgeted = self.daily is not None or self.monthly is not None
            if self.backend is not None and budgeted:
                try:
                    day_used, month_used = await self.backend.load(self.provider, today)
                except FinappdError as exc:
                    # Unknown usage must not mean "nothing spent": send nothing, say why.
                    raise ProviderUnavailableError(
                        f"{self.provider}: quota ledger unreadable: {exc}", provider=self.provider
                    ) from exc
            if self.day is not None and self.day.month == today.month:
                # Same month: increments still pending from yesterday are not in SQLite yet.
                month_used = max(month_used, self.month_used)
            self.day, self.day_used, self.month_used = today, day_used, month_used

    async def take(self, symbol: str | None = None) -> None:
        """Count one request about to be sent, or raise QuotaExhaustedError without counting."""
        await self.refresh()
        assert self.day is not None  # set by refresh()
        which = self.spent()
        if which is not None:
            self.refused += 1
            budget = self.daily if which == "daily" else self.monthly
            raise QuotaExhaustedError(
                f"{self.provider}: {which} quota of {budget} requests is spent; it resets at "
                f"{self.resets_at(which).isoformat()}",
                provider=self.provider,
                symbol=symbol,
            )
        self.day_used += 1
        self.month_used += 1
        await self._persist(self.day)

    async def _persist(self, day: date) -> None:
        """Write this increment, with any others pending, before returning (group commit)."""
        self._pending[day] = self._pending.get(day, 0) + 1
        if self.backend is None:
            self._pending.clear()
            return
        async with self._write_lock:
            if not self._pending:  # an earlier holder's batch carried this increment
                return
            batch, self._pending = self._pending, {}
            try:
                await self.backend.add(self.provider, batch)
            except FinappdError as exc:
                # Memory still enforces the budget in this process; only a restart forgets.
                log.error(
                    "provider.usage_write_failed",
                    provider=self.provider,
                    requests=sum(batch.values()),
                    error=str(exc),
                )
