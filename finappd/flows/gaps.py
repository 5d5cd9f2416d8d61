"""Gaps: the expected trading days a ticker has no daily bar for, and fetching only those.

``finappd gaps [FLOW] [--fill] [--json] [--all]`` looks at every ticker of the
daily-bar-like flows (kinds with ``gaps`` in flows/kinds.py: ``daily_bars`` and
``crypto``; FX rates live in their own table and are not covered). A ticker's window
starts at its first stored daily bar (so a ticker listed later, or backfilled further,
is judged on what it has), or at the flow's lookback start when it has none, and ends at
the newest session that has opened by ``now``. Each day of the window without a bar is
labelled:

* ``holiday`` — the exchange was closed (a named holiday; weekends are never listed):
  no gap, shown only with ``--all``;
* ``not_yet_published`` — the session has not closed, or closed less than the settle
  delay ago (the flow's ``at_close`` delay, else :data:`SETTLE`);
* ``missing`` — a closed session with no bar: a real gap.

``--fill`` asks for the missing days only: one request per contiguous run of missing
trading days per ticker (cut to the chain's ``max_range_days``), as the work items of
the backfill machinery (:func:`~finappd.flows.backfill.run_chunks`), so the same
lanes, rate windows and quota ledger apply, recorded as a run with trigger ``gaps-fill``.

Classification is a pure function of the stored days, the calendar and ``now``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from finappd.calendar import Exchange, closed_reason, latest_session, session_bounds
from finappd.config import FlowSettings, Settings
from finappd.flows.backfill import (
    Chunk,
    Progress,
    chunk_fetch,
    chunk_ranges,
    range_days,
    run_chunks,
)
from finappd.flows.daily_bars import lookback_range
from finappd.flows.kinds import flow_kind
from finappd.flows.run import RunSummary
from finappd.instruments import stored_exchanges
from finappd.providers import BaseProvider
from finappd.store import Store, Writer

__all__ = [
    "SETTLE",
    "Gap",
    "classify",
    "fill_gaps",
    "flow_gaps",
    "load_days",
    "missing_ranges",
    "run_gaps",
]

#: How long after a close a provider is given to publish the bar, unless ``at_close`` says.
SETTLE = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class Gap:
    """A day of ``symbol``'s window with no bar, and why: holiday, not_yet_published, missing."""

    symbol: str
    day: date
    label: str
    reason: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """JSON-able form."""
        return {
            "symbol": self.symbol,
            "day": self.day.isoformat(),
            "label": self.label,
            "reason": self.reason,
        }


def classify(
    symbol: str,
    exchange: Exchange,
    stored: set[date],
    start: date,
    now: datetime,
    settle: timedelta = SETTLE,
) -> list[Gap]:
    """Every day of ``start``..newest opened session with no bar in ``stored``, labelled."""
    end = latest_session(exchange, now)
    gaps: list[Gap] = []
    day = start
    while day <= end:
        if day not in stored:
            reason = closed_reason(exchange, day)
            bounds = session_bounds(exchange, day)
            if reason == "weekend":
                pass
            elif reason is not None:
                gaps.append(Gap(symbol, day, "holiday", reason))
            elif bounds is not None and bounds[1] + settle > now:
                gaps.append(Gap(symbol, day, "not_yet_published"))
            else:
                gaps.append(Gap(symbol, day, "missing"))
        day += timedelta(days=1)
    return gaps


def missing_ranges(
    gaps: Sequence[Gap], stored: set[date], max_days: int | None = None
) -> list[Chunk]:
    """One chunk per contiguous run of one ticker's ``missing`` days (closed days between
    missing ones do not break a run, a day in ``stored`` does), cut to ``max_days``."""
    chunks: list[Chunk] = []
    runs: dict[str, list[tuple[date, date]]] = {}
    for gap in sorted(gaps, key=lambda g: (g.symbol, g.day)):
        if gap.label != "missing":
            continue
        mine = runs.setdefault(gap.symbol, [])
        if mine and not _stored_between(stored, mine[-1][1], gap.day):
            mine[-1] = (mine[-1][0], gap.day)
        else:
            mine.append((gap.day, gap.day))
    for symbol, ranges in runs.items():
        for first, last in ranges:
            chunks.extend(Chunk(symbol, a, b) for a, b in chunk_ranges(first, last, max_days))
    return chunks


def _stored_between(stored: set[date], after: date, before: date) -> bool:
    """Whether a bar is stored strictly between two missing days."""
    day = after + timedelta(days=1)
    while day < before:
        if day in stored:
            return True
        day += timedelta(days=1)
    return False


def load_days(store: Store, symbols: Sequence[str]) -> dict[str, set[date]]:
    """The dates of every stored daily bar of each of ``symbols``; one indexed query each.

    Runs on the writer thread like every store call.
    """
    days: dict[str, set[date]] = {}
    with store._guard("load bar days") as conn:
        for symbol in symbols:
            rows = conn.execute(
                "SELECT ts FROM bars WHERE symbol = ? AND interval = '1d'", (symbol,)
            ).fetchall()
            days[symbol] = {date.fromisoformat(ts[:10]) for (ts,) in rows}
    return days


def flow_gaps(
    flow: FlowSettings,
    days: Mapping[str, set[date]],
    now: datetime,
    exchanges: Mapping[str, Exchange] | None = None,
) -> dict[str, list[Gap]]:
    """Each ticker's gaps in ``flow`` as of ``now``, from its stored days (:func:`load_days`),
    judged on the calendar of the exchange its ``instruments`` row names (``exchanges``,
    :func:`~finappd.instruments.stored_exchanges`), else its suffix's."""
    exchanges = exchanges or {}
    settle = flow.at_close if flow.at_close is not None else SETTLE
    lookback_start, _ = lookback_range(flow, now)
    out: dict[str, list[Gap]] = {}
    for symbol in flow.tickers:
        stored = days.get(symbol, set())
        start = min(stored) if stored else lookback_start
        out[symbol] = classify(
            symbol, flow.exchange_of(symbol, exchanges.get(symbol)), stored, start, now, settle
        )
    return out


async def fill_gaps(
    *,
    flow: FlowSettings,
    gaps: Mapping[str, list[Gap]],
    days: Mapping[str, set[date]],
    providers: Sequence[BaseProvider],
    store: Store,
    writer: Writer,
) -> RunSummary | None:
    """Fetch ``flow``'s missing ranges through the backfill machinery (``None``: none missing)."""
    size = range_days(providers)
    chunks = [
        c
        for symbol, mine in gaps.items()
        for c in missing_ranges(mine, days.get(symbol, set()), size)
    ]
    if not chunks:
        return None
    summary, _ = await run_chunks(
        flow=flow.name,
        trigger="gaps-fill",
        chunks=chunks,
        fetch_chunk=chunk_fetch(flow.kind, providers),
        providers=providers,
        store=store,
        writer=writer,
        num_workers=flow.num_workers,
        progress=Progress(len(chunks), 0),
        persist=False,
    )
    return summary


def _shown(gaps: Sequence[Gap], show_all: bool) -> list[Gap]:
    return [g for g in gaps if show_all or g.label != "holiday"]


async def run_gaps(
    settings: Settings,
    name: str | None,
    *,
    fill: bool = False,
    as_json: bool = False,
    show_all: bool = False,
    now: datetime | None = None,
) -> int:
    """``finappd gaps``: print each bar flow's gaps and, with ``fill``, fetch the missing ones.

    Exit status: 0, or with ``fill`` the worst fill run's (3 partial, 1 failed).
    """
    from finappd.runtime import Runtime  # the runtime imports the flows package

    now = now or datetime.now(UTC)
    flows = [settings.flow(name)] if name else settings.flows
    flows = [f for f in flows if flow_kind(f.kind).gaps]
    report: list[dict[str, Any]] = []
    status = 0
    async with Runtime(settings) as runtime:
        for flow in flows:
            days = await runtime.writer.call(load_days, runtime.store, flow.tickers)
            venues = await runtime.writer.call(stored_exchanges, runtime.store, flow.tickers)
            gaps = flow_gaps(flow, days, now, venues)
            entry: dict[str, Any] = {
                "flow": flow.name,
                "tickers": {s: [g.as_dict() for g in _shown(v, show_all)] for s, v in gaps.items()},
                "missing": sum(g.label == "missing" for v in gaps.values() for g in v),
                "not_yet_published": sum(
                    g.label == "not_yet_published" for v in gaps.values() for g in v
                ),
            }
            if fill:
                chain = [runtime.providers[p] for p in (flow.provider, *flow.fallback)]
                summary = await fill_gaps(
                    flow=flow,
                    gaps=gaps,
                    days=days,
                    providers=chain,
                    store=runtime.store,
                    writer=runtime.writer,
                )
                entry["fill"] = None if summary is None else summary.as_dict()
                if summary is not None and summary.status != "ok":
                    status = max(status, 3 if summary.status == "partial" else 1)
            report.append(entry)
    if as_json:
        print(json.dumps({"now": now.isoformat(), "flows": report}), flush=True)
        return status
    for entry in report:
        print(
            f"{entry['flow']}: {entry['missing']} missing, "
            f"{entry['not_yet_published']} not yet published"
        )
        for gaps_of in entry["tickers"].values():
            for g in gaps_of:
                extra = f" ({g['reason']})" if g["reason"] else ""
                print(f"  {g['symbol']:<12} {g['day']}  {g['label']}{extra}")
        if entry.get("fill"):
            print(f"  filled: {json.dumps(entry['fill'])}")
    return status
