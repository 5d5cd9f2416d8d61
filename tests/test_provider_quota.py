"""Tests for finappd.providers.quota: budgets per quota day and month, persistence, resets."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from finappd.errors import ProviderUnavailableError, QuotaExhaustedError, StoreError
from finappd.providers import quota
from finappd.providers.quota import QuotaLedger, next_day_start, next_month_start


class FakeUsage:
    """An in-memory UsageBackend that records every write (and can be told to fail)."""

    def __init__(self, rows: dict[tuple[str, date], int] | None = None) -> None:
        self.rows = dict(rows or {})
        self.writes: list[dict[date, int]] = []
        self.fail = False

    async def load(self, provider: str, day: date) -> tuple[int, int]:
        """Day and month-to-day totals."""
        month = sum(
            n
            for (p, d), n in self.rows.items()
            if p == provider and (d.year, d.month) == (day.year, day.month) and d <= day
        )
        return self.rows.get((provider, day), 0), month

    async def add(self, provider: str, counts: Mapping[date, int]) -> None:
        """Add counts, yielding to the loop like a writer thread would."""
        await asyncio.sleep(0.001)
        if self.fail:
            raise StoreError("disk full")
        self.writes.append(dict(counts))
        for day, n in counts.items():
            self.rows[(provider, day)] = self.rows.get((provider, day), 0) + n


class Clock:
    """A UTC wall clock the test sets."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


MARCH_14 = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


async def test_daily_budget_refuses_the_request_after_the_last() -> None:
    """Quota 3: three takes pass, the fourth raises quota_exhausted and is not counted."""
    usage = FakeUsage()
    ledger = QuotaLedger("av", daily=3, monthly=None, backend=usage, clock=Clock(MARCH_14))
    for _ in range(3):
        await ledger.take("IBM")
    with pytest.raises(QuotaExhaustedError) as info:
        await ledger.take("IBM")
    assert info.value.kind == "quota_exhausted"
    assert (info.value.provider, info.value.symbol) == ("av", "IBM")
    assert "daily quota of 3" in str(info.value)
    assert "2026-03-15T00:00:00+00:00" in str(info.value)
    await ledger.drain()
    assert usage.rows == {("av", date(2026, 3, 14)): 3}
    assert (ledger.day_used, ledger.refused) == (3, 1)


async def test_restart_the_same_day_starts_from_what_was_persisted() -> None:
    """A new ledger (a restart) loads today's usage and refuses at once when it is spent."""
    usage = FakeUsage({("av", date(2026, 3, 14)): 25})
    ledger = QuotaLedger("av", daily=25, monthly=None, backend=usage, clock=Clock(MARCH_14))
    with pytest.raises(QuotaExhaustedError):
        await ledger.take()
    assert usage.writes == []


async def test_a_new_quota_day_gets_a_new_budget() -> None:
    """Crossing midnight in the quota timezone reloads the day: the budget is back."""
    clock = Clock(datetime(2026, 3, 14, 23, 59, tzinfo=UTC))
    ledger = QuotaLedger("av", daily=1, monthly=None, backend=FakeUsage(), clock=clock)
    await ledger.take()
    with pytest.raises(QuotaExhaustedError):
        await ledger.take()
    clock.now = datetime(2026, 3, 15, 0, 0, 1, tzinfo=UTC)
    await ledger.take()
    assert ledger.day == date(2026, 3, 15)


async def test_monthly_budget_sums_the_days_of_the_month() -> None:
    """Earlier days of the month count toward the monthly quota; last month's do not."""
    usage = FakeUsage(
        {("cg", date(2026, 2, 28)): 50, ("cg", date(2026, 3, 1)): 7, ("cg", date(2026, 3, 13)): 2}
    )
    ledger = QuotaLedger("cg", daily=None, monthly=10, backend=usage, clock=Clock(MARCH_14))
    await ledger.take()
    with pytest.raises(QuotaExhaustedError, match="monthly quota of 10"):
        await ledger.take()
    assert ledger.resets_at("monthly") == datetime(2026, 4, 1, tzinfo=UTC)


async def test_concurrent_takers_never_overshoot_and_writes_are_batched() -> None:
    """Fifty concurrent takes at quota 20: exactly 20 pass, persisted in fewer writes."""
    usage = FakeUsage()
    ledger = QuotaLedger("x", daily=20, monthly=None, backend=usage, clock=Clock(MARCH_14))
    results = await asyncio.gather(*(ledger.take() for _ in range(50)), return_exceptions=True)
    assert sum(r is None for r in results) == 20
    assert all(isinstance(r, QuotaExhaustedError) for r in results if r is not None)
    await ledger.drain()
    assert usage.rows == {("x", date(2026, 3, 14)): 20}
    assert len(usage.writes) < 20


async def test_quota_day_follows_the_configured_timezone() -> None:
    """With quota_tz America/New_York, 02:00 UTC on the 15th is still the 14th."""
    usage = FakeUsage()
    clock = Clock(datetime(2026, 3, 15, 2, 0, tzinfo=UTC))
    ledger = QuotaLedger(
        "av", daily=5, monthly=None, tz="America/New_York", backend=usage, clock=clock
    )
    await ledger.take()
    await ledger.drain()
    assert usage.rows == {("av", date(2026, 3, 14)): 1}
    assert ledger.resets_at("daily") == datetime(2026, 3, 15, 4, 0, tzinfo=UTC)


async def test_failed_write_is_logged_and_memory_still_enforces() -> None:
    """A store failure is one error log; the request still counts and a later flush writes it."""
    usage = FakeUsage()
    usage.fail = True
    ledger = QuotaLedger("x", daily=1, monthly=None, backend=usage, clock=Clock(MARCH_14))
    with capture_logs() as logs:
        await ledger.take()
        assert await ledger.flush() is False
    assert [e["event"] for e in logs] == ["provider.usage_write_failed"]
    with pytest.raises(QuotaExhaustedError):
        await ledger.take()
    usage.fail = False
    await ledger.drain()
    assert usage.rows == {("x", date(2026, 3, 14)): 1}


async def test_without_backend_or_budget_nothing_is_refused() -> None:
    """No quota configured: every take passes and is counted in memory."""
    ledger = QuotaLedger("y", daily=None, monthly=None, clock=Clock(MARCH_14))
    for _ in range(100):
        await ledger.take()
    assert ledger.day_used == 100
    assert ledger.spent() is None


@pytest.mark.parametrize(
    ("now", "tz", "day_start", "month_start"),
    [
        # Plain UTC, month end and year end.
        ("2026-03-14T12:00+00:00", "UTC", "2026-03-15T00:00+00:00", "2026-04-01T00:00+00:00"),
        ("2026-12-31T23:59+00:00", "UTC", "2027-01-01T00:00+00:00", "2027-01-01T00:00+00:00"),
        # New York: the night before the US DST switch (Mar 8 2026) and after it.
        (
            "2026-03-08T03:00+00:00",
            "America/New_York",
            "2026-03-08T05:00+00:00",
            "2026-04-01T04:00+00:00",
        ),
        (
            "2026-03-08T12:00+00:00",
            "America/New_York",
            "2026-03-09T04:00+00:00",
            "2026-04-01T04:00+00:00",
        ),
        # Warsaw on the last day of February, a leap year and not.
        (
            "2028-02-29T22:30+00:00",
            "Europe/Warsaw",
            "2028-02-29T23:00+00:00",
            "2028-02-29T23:00+00:00",
        ),
        (
            "2026-02-27T22:30+00:00",
            "Europe/Warsaw",
            "2026-02-27T23:00+00:00",
            "2026-02-28T23:00+00:00",
        ),
    ],
)
def test_reset_times(now: str, tz: str, day_start: str, month_start: str) -> None:
    """Quotas reset at local midnight: next day and next month, across DST and month ends."""
    moment = datetime.fromisoformat(now)
    assert next_day_start(moment, ZoneInfo(tz)) == datetime.fromisoformat(day_start)
    assert next_month_start(moment, ZoneInfo(tz)) == datetime.fromisoformat(month_start)


async def test_unreadable_ledger_refuses_instead_of_guessing() -> None:
    """If today's usage cannot be read, nothing is sent: ProviderUnavailableError."""

    class Broken(FakeUsage):
        async def load(self, provider: str, day: date) -> tuple[int, int]:
            raise StoreError("database is locked")

    ledger = QuotaLedger("av", daily=25, monthly=None, backend=Broken(), clock=Clock(MARCH_14))
    with pytest.raises(ProviderUnavailableError, match="ledger unreadable"):
        await ledger.take()
    assert ledger.day_used == 0


async def test_unbudgeted_provider_counts_without_reading() -> None:
    """No quota: usage is never read back, but every request is still written."""

    class WriteOnly(FakeUsage):
        async def load(self, provider: str, day: date) -> tuple[int, int]:
            raise AssertionError("no budget, nothing to load")

    usage = WriteOnly()
    ledger = QuotaLedger("yahoo", daily=None, monthly=None, backend=usage, clock=Clock(MARCH_14))
    for _ in range(3):
        await ledger.take()
    await ledger.drain()
    assert usage.rows == {("yahoo", date(2026, 3, 14)): 3}


async def test_take_now_counts_at_once_and_writes_behind() -> None:
    """take_now decrements the budget synchronously; the write follows without being awaited."""
    usage = FakeUsage()
    ledger = QuotaLedger("av", daily=2, monthly=None, backend=usage, clock=Clock(MARCH_14))
    await ledger.refresh()
    assert ledger.take_now("A")
    assert ledger.take_now("B")
    with pytest.raises(QuotaExhaustedError):
        ledger.take_now("C")
    assert (ledger.day_used, usage.rows) == (2, {})
    for _ in range(50):  # the budgeted flush starts on the next loop turn
        if usage.rows:
            break
        await asyncio.sleep(0.001)
    assert usage.rows == {("av", date(2026, 3, 14)): 2}
    assert usage.writes == [{date(2026, 3, 14): 2}]


async def test_unbudgeted_usage_is_flushed_every_few_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a budget the increments wait UNBUDGETED_FLUSH_S, then go in one write."""
    monkeypatch.setattr(quota, "UNBUDGETED_FLUSH_S", 0.05)
    usage = FakeUsage()
    ledger = QuotaLedger("yahoo", daily=None, monthly=None, backend=usage, clock=Clock(MARCH_14))
    for _ in range(10):
        assert ledger.take_now()
    await asyncio.sleep(0.01)
    assert usage.rows == {}
    await asyncio.sleep(0.1)
    assert usage.writes == [{date(2026, 3, 14): 10}]


async def test_take_now_asks_for_a_refresh_when_the_budgeted_day_turns() -> None:
    """A budgeted ledger counts nothing on a new quota day until refresh() has read it."""
    clock = Clock(datetime(2026, 3, 14, 23, 59, tzinfo=UTC))
    usage = FakeUsage({("av", date(2026, 3, 15)): 4})
    ledger = QuotaLedger("av", daily=5, monthly=None, backend=usage, clock=clock)
    await ledger.take()
    clock.now = datetime(2026, 3, 15, 0, 0, 1, tzinfo=UTC)
    assert ledger.take_now() is False
    await ledger.take()  # reads the 15th's 4, counts the 5th
    with pytest.raises(QuotaExhaustedError):
        await ledger.take()


async def test_a_reread_day_adds_what_is_not_written_yet() -> None:
    """Reading the day again (a quota_tz change) keeps the increments still pending."""
    usage = FakeUsage({("av", date(2026, 3, 14)): 2})
    ledger = QuotaLedger("av", daily=5, monthly=None, backend=usage, clock=Clock(MARCH_14))
    await ledger.refresh()
    assert ledger.take_now()
    assert ledger.take_now()
    ledger.retune(daily=5, monthly=None, tz="Europe/Warsaw")  # same date at noon UTC
    await ledger.refresh()
    assert ledger.day_used == 4
    await ledger.drain()
    assert usage.rows == {("av", date(2026, 3, 14)): 4}


async def test_a_stuck_writer_never_blocks_counting() -> None:
    """Counting goes on while a write hangs; drain waits for it and then writes the rest."""
    release = asyncio.Event()

    class Stuck(FakeUsage):
        async def add(self, provider: str, counts: Mapping[date, int]) -> None:
            await release.wait()
            await super().add(provider, counts)

    usage = Stuck()
    ledger = QuotaLedger("av", daily=100, monthly=None, backend=usage, clock=Clock(MARCH_14))
    await ledger.take()
    await asyncio.sleep(0.01)  # the first write is now in flight, waiting
    for _ in range(9):
        await asyncio.wait_for(ledger.take(), timeout=0.1)
    drained = asyncio.create_task(ledger.drain())
    await asyncio.sleep(0.01)
    assert not drained.done()
    release.set()
    await drained
    assert usage.writes == [{date(2026, 3, 14): 1}, {date(2026, 3, 14): 9}]
