"""Provider budgets as people see them: effective limits, today's usage, and the ledger's store.

:class:`StoreUsage` is how a provider's quota ledger reaches SQLite: every call goes
through the store's one writer thread, never blocking the event loop.
:func:`effective_limits_report` is what ``finappd check-config`` shows per provider;
:func:`usage_report` is what ``finappd status`` shows (today's requests against each
quota), read from ``provider_usage`` the way any SQL reader could.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from finappd.config import ProviderSettings, Settings
from finappd.providers import provider_class
from finappd.providers.limits import Limits, effective_limits
from finappd.providers.quota import next_day_start

if TYPE_CHECKING:  # only annotations: the registry imports this module while discovering
    from finappd.store import Store, Writer

__all__ = [
    "SharedUsage",
    "StoreUsage",
    "effective_limits_report",
    "format_usage",
    "provider_limits",
    "usage_report",
]


class StoreUsage:
    """The quota ledger's persistence: ``provider_usage`` through the store's writer thread."""

    def __init__(self, store: Store, writer: Writer) -> None:
        self.store = store
        self.writer = writer

    def __repr__(self) -> str:
        return f"<StoreUsage store={self.store!r}>"

    async def load(self, provider: str, day: date) -> tuple[int, int]:
        """Requests of ``provider`` on ``day`` and in ``day``'s month up to it."""
        return await self.writer.call(self.store.usage, provider, day.isoformat())

    async def add(self, provider: str, counts: Mapping[date, int]) -> None:
        """Add ``counts`` (requests per quota day) to ``provider``'s usage."""
        by_day = {day.isoformat(): n for day, n in counts.items()}
        await self.writer.call(self.store.add_usage, provider, by_day)


class SharedUsage(StoreUsage):
    """The ledger's persistence when daemons share a PostgreSQL store: reads as
    :class:`StoreUsage`, writes nothing, since the coordinator counted every request in
    ``provider_usage`` as it admitted it (``finappd.coord``)."""

    async def add(self, provider: str, counts: Mapping[date, int]) -> None:
        """Nothing to add: each request was counted when it was admitted."""


def provider_limits(name: str, settings: ProviderSettings) -> Limits:
    """The limits provider ``name`` runs with: its class defaults with the config's overrides."""
    return effective_limits(provider_class(settings.kind or name).spec.limits, settings)


def effective_limits_report(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each configured provider's effective limits, JSON-able, for ``check-config``."""
    report: dict[str, dict[str, Any]] = {}
    for name, provider in settings.providers.items():
        limits = provider_limits(name, provider).describe()
        limits["circuit"] = (
            f"opens after {provider.circuit_threshold} transient failures in a row, "
            f"probes after {provider.circuit_cooldown.total_seconds():g}s"
        )
        report[name] = limits
    return report


def usage_report(
    store: Store, settings: Settings, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Today's requests of each configured provider against its daily and monthly quotas."""
    now = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for name, provider in settings.providers.items():
        limits = provider_limits(name, provider)
        tz = ZoneInfo(limits.quota_tz)
        day = now.astimezone(tz).date()
        today, month = store.usage(name, day.isoformat())
        rows.append(
            {
                "provider": name,
                "day": day.isoformat(),
                "requests": today,
                "daily_quota": limits.daily(),
                "month_requests": month,
                "monthly_quota": limits.monthly(),
                "resets_at": next_day_start(now, tz).isoformat(),
            }
        )
    return rows


def format_usage(rows: list[dict[str, Any]]) -> list[str]:
    """One text line per provider: ``eod_api  today 12/25  month 80/500  resets …``."""
    lines = []
    for row in rows:
        daily = row["daily_quota"]
        monthly = row["monthly_quota"]
        line = f"{row['provider']:<14} today {row['requests']}/{daily if daily else '-'}"
        if monthly is not None:
            line += f"  month {row['month_requests']}/{monthly}"
        lines.append(f"{line}  (quota day {row['day']}, resets {row['resets_at']})")
    return lines
