"""Run bookkeeping: a run's start, outcome and errors, and the status reads over them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from finappd.errors import RUN_KINDS, StoreError, kinds_in
from finappd.store._mixin import StorePart

__all__ = ["RunRow", "RunTotals", "RunsMixin", "utc_text"]

# Newest first; within each flow only the newest ``limit`` runs.
_LAST_RUNS = """
SELECT id, flow, "trigger", started_at, finished_at, status,
       tickers_total, tickers_ok, tickers_failed, rows_written, error, daemon
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY flow ORDER BY started_at DESC, id DESC) AS n
    FROM runs
) AS r
WHERE n <= ?
ORDER BY started_at DESC, id DESC
"""

_RUN = """
SELECT id, flow, "trigger", started_at, finished_at, status,
       tickers_total, tickers_ok, tickers_failed, rows_written, error, daemon
FROM runs WHERE id = ?
"""

# The newest regular run per flow whose data landed (ok or partial). Backfills, gap
# fills and split re-fetches of old history say nothing about whether the flow keeps
# up, so only the flow's own triggers count.
_LAST_GOOD_RUNS = """
SELECT id, flow, "trigger", started_at, finished_at, status,
       tickers_total, tickers_ok, tickers_failed, rows_written, error, daemon
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY flow ORDER BY started_at DESC, id DESC) AS n
    FROM runs
    WHERE status IN ('ok', 'partial') AND "trigger" IN ('schedule', 'manual', 'api')
) AS r
WHERE n = 1
"""

#: Every value ``runs.status`` may hold; ``running`` until the run finishes.
RUN_STATUSES = ("running", "ok", "partial", "failed", "interrupted", "cancelled")


# Per flow and status: runs, tickers ok and failed, and the finished runs' count and seconds.
_RUN_TOTALS = """
SELECT flow, status, count(*), coalesce(sum(tickers_ok), 0), coalesce(sum(tickers_failed), 0),
       count(finished_at), coalesce(sum({seconds}), 0.0)
FROM runs GROUP BY flow, status ORDER BY flow, status
"""
#: A finished run's seconds, from its ISO-8601 UTC texts, in each dialect.
_RUN_SECONDS = {
    "sqlite": "(julianday(finished_at) - julianday(started_at)) * 86400.0",
    "postgresql": "extract(epoch FROM finished_at::timestamptz - started_at::timestamptz)::float8",
}


@dataclass(frozen=True, slots=True)
class RunTotals:
    """What the ``runs`` rows of one flow and status add up to."""

    flow: str
    status: str
    runs: int
    tickers_ok: int
    tickers_failed: int
    finished: int
    seconds: float


_REFUSED = kinds_in("refused")
_REFUSAL = (
    "SELECT kind, message FROM fetch_errors WHERE run_id = ? AND provider = ? "  # noqa: S608 (only ?s)
    f"AND kind IN ({', '.join('?' * len(_REFUSED))}) ORDER BY id DESC LIMIT 1"
)


def utc_text(moment: datetime) -> str:
    """ISO-8601 UTC text of a tz-aware datetime; naive ones are refused, not guessed."""
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the store only takes tz-aware times")
    return moment.astimezone(UTC).isoformat()


def _parse_utc(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class RunRow:
    """One row of ``runs``, with its times parsed to tz-aware datetimes."""

    id: int
    flow: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    tickers_total: int | None
    tickers_ok: int | None
    tickers_failed: int | None
    rows_written: int | None
    error: str | None
    #: The ``daemon_name`` of the daemon that ran it (v5; None for older rows).
    daemon: str | None = None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> RunRow:
        """Build from a ``SELECT`` of the runs columns in table order."""
        started_at = datetime.fromisoformat(row[3])
        return cls(row[0], row[1], row[2], started_at, _parse_utc(row[4]), *row[5:])


class RunsMixin(StorePart):
    """``Store``'s runs and fetch_errors: write a run's life, read runs back for status."""

    def start_run(
        self,
        flow: str,
        trigger: str,
        tickers_total: int,
        now: datetime,
        *,
        daemon: str | None = None,
        fire_at: datetime | None = None,
    ) -> int:
        """Insert a ``running`` run (by ``daemon``, for the scheduled ``fire_at``); its id."""
        fire = None if fire_at is None else utc_text(fire_at)
        with self._write(f"start_run of {flow}") as conn:
            run_id: int = conn.execute(
                'INSERT INTO runs (flow, "trigger", started_at, status, tickers_total, daemon, '
                "fire_at) VALUES (?, ?, ?, 'running', ?, ?, ?) RETURNING id",
                (flow, trigger, utc_text(now), tickers_total, daemon, fire),
            ).fetchone()[0]
        return run_id

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        tickers_ok: int,
        tickers_failed: int,
        rows_written: int,
        error: str | None,
        now: datetime,
    ) -> None:
        """Record a run's outcome; ``status`` is one of ``RUN_STATUSES`` except ``running``."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"a run cannot finish with status {status!r}")
        with self._write(f"finish_run of run {run_id}") as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, tickers_ok = ?, tickers_failed = ?, "
                "rows_written = ?, error = ? WHERE id = ?",
                (status, utc_text(now), tickers_ok, tickers_failed, rows_written, error, run_id),
            )
            if cursor.rowcount != 1:
                raise StoreError(f"finish_run on {self.where}: no run with id {run_id}")

    def record_error(
        self, run_id: int, symbol: str, provider: str, kind: str, message: str, now: datetime
    ) -> None:
        """Record why ``symbol`` failed in run ``run_id``."""
        with self._write(f"record_error for {symbol}") as conn:
            conn.execute(
                "INSERT INTO fetch_errors (run_id, symbol, provider, kind, message, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, symbol, provider, kind, message, utc_text(now)),
            )

    def last_runs(self, limit: int = 10) -> list[RunRow]:
        """The newest ``limit`` runs of each flow, newest first."""
        with self._guard("last_runs") as conn:
            return [RunRow.from_row(row) for row in conn.execute(_LAST_RUNS, (limit,))]

    def run(self, run_id: int) -> RunRow | None:
        """The run with this id, or ``None``."""
        with self._guard(f"run {run_id}") as conn:
            row = conn.execute(_RUN, (run_id,)).fetchone()
        return None if row is None else RunRow.from_row(row)

    def run_totals(self) -> list[RunTotals]:
        """Every flow's runs added up per status (the API's Prometheus counters)."""
        with self._guard("run_totals") as conn:
            sql = _RUN_TOTALS.format(seconds=_RUN_SECONDS[self.dialect])
            return [RunTotals(*row) for row in conn.execute(sql)]

    def errors_for_run(self, run_id: int) -> list[tuple[str, str, str, str]]:
        """``(symbol, provider, kind, message)`` of each error of run ``run_id``, oldest first."""
        with self._guard(f"errors_for_run {run_id}") as conn:
            rows = conn.execute(
                "SELECT symbol, provider, kind, message FROM fetch_errors WHERE run_id = ? "
                "ORDER BY id",
                (run_id,),
            )
            return rows.fetchall()

    def refusal(self, run_id: int, provider: str) -> tuple[str, str] | None:
        """``(kind, message)`` of ``provider``'s newest fail-fast refusal in run ``run_id``.

        A refusal is an error of the ``refused`` group (:class:`~finappd.errors.RefusedError`):
        the provider's circuit was open, it was parked or its key had been refused.
        """
        with self._guard(f"refusal of {provider} in run {run_id}") as conn:
            row = conn.execute(_REFUSAL, (run_id, provider, *_REFUSED)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def last_good_runs(self) -> dict[str, RunRow]:
        """The newest regular run of each flow that ended ``ok`` or ``partial`` (data landed)."""
        with self._guard("last_good_runs") as conn:
            rows = conn.execute(_LAST_GOOD_RUNS).fetchall()
        return {row[1]: RunRow.from_row(row) for row in rows}

    def failure_streaks(self, flow: str, runs: int = 5) -> list[tuple[str, int, str, str]]:
        """Symbols that failed in ``flow``'s newest finished runs in a row (at most ``runs``).

        Each is ``(symbol, streak, kind, message)``, kind and message of the newest
        failure, longest streak first. The run's own kinds (:data:`~finappd.errors.RUN_KINDS`:
        cancelled, deadline, store) say nothing about the symbol and are left out.
        """
        with self._guard(f"failure_streaks of {flow}") as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM runs WHERE flow = ? AND status IN ('ok', 'partial', 'failed') "
                    "ORDER BY started_at DESC, id DESC LIMIT ?",
                    (flow, runs),
                )
            ]
            if not ids:
                return []
            marks = ", ".join("?" * len(ids))
            run_marks = ", ".join("?" * len(RUN_KINDS))
            errors = conn.execute(
                f"SELECT run_id, symbol, kind, message FROM fetch_errors "  # noqa: S608 (only ?s)
                f"WHERE run_id IN ({marks}) AND kind NOT IN ({run_marks}) ORDER BY id",
                (*ids, *RUN_KINDS),
            ).fetchall()
        failed: dict[str, set[int]] = {}
        newest: dict[str, tuple[str, str]] = {}
        for run_id, symbol, kind, message in errors:  # oldest first: the last one wins
            failed.setdefault(symbol, set()).add(run_id)
            newest[symbol] = (kind or "", message or "")
        streaks: list[tuple[str, int, str, str]] = []
        for symbol, run_ids in failed.items():
            streak = next((i for i, run_id in enumerate(ids) if run_id not in run_ids), len(ids))
            if streak:
                streaks.append((symbol, streak, *newest[symbol]))
        return sorted(streaks, key=lambda s: (-s[1], s[0]))
