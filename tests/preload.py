"""What the server :mod:`tests.procs` forks its children from loads once, before any fork.

Imported by that server alone (never by a test): importing it imports what ``finappd run``
and ``run-once`` import, and fills the first-use caches every child would otherwise fill
again, about 0.7 s of CPU each:

- SQLAlchemy's first DDL compile (a store's first open: 0.33 s, then 5 ms);
- New York's session tables for the days a run now asks about (0.19 s per calendar-year),
  the exchange of nearly every ticker the tests use: what ``calendar.prepare`` builds.

What is cached is what the child would compute itself, the same values: no test sees a
difference but the time.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

# What the children run, imported once here (and exchange_calendars by prepare below).
import finappd.cli
import finappd.runtime
import finappd.scheduler  # noqa: F401
from finappd.calendar import EXCHANGES, prepare
from finappd.store import Store

__all__: list[str] = []


def _warm() -> None:
    with tempfile.TemporaryDirectory(prefix="finappd-preload-") as tmp:
        Store(Path(tmp) / "warm.sqlite3").open().close()
    prepare([("AAPL", EXCHANGES["XNYS"])], datetime.now(UTC))


_warm()
