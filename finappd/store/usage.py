"""The provider usage ledger: requests counted per provider and quota day."""

from __future__ import annotations

from collections.abc import Mapping

from finappd.store._mixin import StorePart

__all__ = ["UsageMixin"]

_ADD_USAGE = """
INSERT INTO provider_usage (provider, day, requests) VALUES (?, ?, ?)
ON CONFLICT (provider, day) DO UPDATE SET requests = provider_usage.requests + excluded.requests
"""

# Day and month-to-day totals; ``day`` is ISO text, so the month is a string range.
_USAGE = """
SELECT COALESCE(SUM(CASE WHEN day = ? THEN requests END), 0), COALESCE(SUM(requests), 0)
FROM provider_usage WHERE provider = ? AND day BETWEEN ? AND ?
"""


class UsageMixin(StorePart):
    """``Store``'s provider_usage table: add a batch of counts, read a day and its month."""

    def add_usage(self, provider: str, counts: Mapping[str, int]) -> None:
        """Add requests per quota day (``YYYY-MM-DD`` → n) to ``provider``'s usage, at once."""
        rows = [(provider, day, n) for day, n in counts.items()]
        with self._write(f"add_usage of {provider}") as conn:
            conn.executemany(_ADD_USAGE, rows)

    def usage(self, provider: str, day: str) -> tuple[int, int]:
        """Requests of ``provider`` on quota day ``day`` and in its month up to that day."""
        with self._guard(f"usage of {provider}") as conn:
            row = conn.execute(_USAGE, (day, provider, f"{day[:8]}01", day)).fetchone()
        return int(row[0]), int(row[1])
