"""Dry run: what ``finappd run-once FLOW`` would request, against which budgets, for how long.

``finappd run-once FLOW --dry-run`` sends nothing. It plans the run the way the run
itself would, by its kind's plan (flows/kinds.py): for ``daily_bars`` the incremental
planner (flows/incremental.py) decides from the stored bars and the calendar which
tickers need a request; ``quotes`` asks only for tickers whose market is in session;
``fx`` once per pair ticker and ``crypto`` once per ticker. Every planned request is
counted against the flow's primary provider (the fallbacks are asked only when it
fails), compared with today's usage in ``provider_usage`` and the provider's effective
daily quota, and timed under its rate windows and concurrency with
:func:`estimate_seconds`:

    c      = max(1, min(max_concurrency, num_workers, n))
    rate   = max over windows w shorter than a day of floor((n - 1) / w.count) * w.period * HEADROOM
    est(n) = max(rate + latency, ceil(n / c) * latency)        (0 when n = 0)

``rate`` is when the sliding windows admit the n-th request (the first ``w.count`` go at
once, then one window per further ``w.count``); ``ceil(n / c) * latency`` is the time the
concurrency-bounded lanes need at a nominal ``latency`` per request (:data:`LATENCY`).
Not modelled: retries, fallbacks, a provider that pages one range over several requests,
and the split re-fetch a run may trigger afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from finappd.config import FlowSettings, Settings
from finappd.flows.incremental import BarState
from finappd.flows.kinds import bar_state, flow_kind
from finappd.providers.limits import HEADROOM, Limits
from finappd.providers.usage import provider_limits
from finappd.store import Store, Writer

__all__ = ["LATENCY", "dry_run", "estimate_seconds", "plan_report", "planned_tickers"]

#: Nominal seconds per request for the estimate (a typical API answer, not measured).
LATENCY = 0.25


def planned_tickers(
    flow: FlowSettings,
    now: datetime,
    state: BarState | None,
) -> list[str]:
    """The tickers a run of ``flow`` at ``now`` would send a request for, in order."""
    return flow_kind(flow.kind).plan(flow, now, state)


def estimate_seconds(
    requests: int, limits: Limits, num_workers: int, latency: float = LATENCY
) -> float:
    """Expected seconds for ``requests`` under ``limits`` (formula in the module docstring)."""
    if requests <= 0:
        return 0.0
    lanes = max(1, min(limits.max_concurrency, num_workers, requests))
    rate = max(
        ((requests - 1) // w.count * w.period * HEADROOM for w in limits.windows()), default=0.0
    )
    return round(max(rate + latency, math.ceil(requests / lanes) * latency), 3)


def plan_report(
    flow: FlowSettings,
    settings: Settings,
    tickers: Sequence[str],
    usage: dict[str, int],
    now: datetime,
    latency: float = LATENCY,
) -> dict[str, Any]:
    """The JSON the dry run prints, from the planned tickers and today's usage per provider."""
    providers: list[dict[str, Any]] = []
    for name in (flow.provider, *flow.fallback):
        limits = provider_limits(name, settings.providers[name])
        requests = len(tickers) if name == flow.provider else 0
        daily = limits.daily()
        used = usage.get(name, 0)
        providers.append(
            {
                "provider": name,
                "requests": requests,
                "quota_day": now.astimezone(ZoneInfo(limits.quota_tz)).date().isoformat(),
                "used_today": used,
                "daily_quota": daily,
                "share_of_daily_quota": round(requests / daily, 4) if daily else None,
                "would_exceed_quota": daily is not None and used + requests > daily,
                "rates": [str(r) for r in limits.windows()],
                "max_concurrency": limits.max_concurrency,
                "estimated_seconds": estimate_seconds(requests, limits, flow.num_workers, latency),
            }
        )
    return {
        "flow": flow.name,
        "kind": flow.kind,
        "dry_run": True,
        "now": now.isoformat(),
        "tickers_total": len(flow.tickers),
        "tickers_to_request": len(tickers),
        "requests": len(tickers),
        "skipped": len(flow.tickers) - len(tickers),
        "providers": providers,
        "estimated_seconds": max((p["estimated_seconds"] for p in providers), default=0.0),
        "latency_assumed_s": latency,
    }


def _usage_today(store: Store, settings: Settings, names: Sequence[str], now: datetime) -> Any:
    """Today's requests of each of ``names`` (its own quota day); runs on the writer thread."""
    out: dict[str, int] = {}
    for name in names:
        tz = ZoneInfo(provider_limits(name, settings.providers[name]).quota_tz)
        out[name] = store.usage(name, now.astimezone(tz).date().isoformat())[0]
    return out


async def dry_run(
    settings: Settings, name: str, store: Store, writer: Writer, now: datetime
) -> dict[str, Any]:
    """Plan a run of flow ``name`` at ``now`` from the store, sending nothing."""
    flow = settings.flow(name)
    state = await bar_state(flow, flow.tickers, store, writer, now)
    tickers = planned_tickers(flow, now, state)
    names = [flow.provider, *flow.fallback]
    usage: dict[str, int] = await writer.call(_usage_today, store, settings, names, now)
    return plan_report(flow, settings, tickers, usage, now)
