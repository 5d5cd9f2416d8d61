"""``finappd status``: each flow's health, read-only from the database and the config.

Status runs in a process of its own, so the daemon's scheduler is out of reach: the
next fire time is computed from the flow's trigger in the config (for ``every``
flows, from the last run's start, which is when the daemon's interval fires).

A flow is **stale** when no good run (``ok`` or ``partial``: data landed) started at
or after its cutoff. By default the cutoff allows one failed or missed scheduled run
and alarms on the second: a cron flow's cutoff is the second-to-last fire time whose
run should be over by now (fire + deadline), so weekends and holidays in the cron
expression never alarm; an ``every`` flow's is ``2 * every + deadline`` ago.
``--max-age`` replaces it with a plain age for every flow.

Tickers in a not-found streak (``instruments.not_found_runs``) are listed last, those
marked delisted with the time they will be asked again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from finappd.calendar import describe
from finappd.config import FlowSettings, Settings
from finappd.errors import REFUSAL_STATES
from finappd.providers.usage import format_usage, usage_report
from finappd.store import RunRow, Store
from finappd.store.backend import database_exists, open_readonly
from finappd.store.instruments import Streak, not_found_streaks

__all__ = [
    "EXIT_STALE",
    "FlowHealth",
    "good_run_cutoff",
    "next_fire",
    "previous_fires",
    "print_status",
    "status_line",
    "status_report",
]

#: ``status --check`` exit code when a flow is stale or has no good run.
EXIT_STALE = 2
#: A symbol failing in this many newest runs in a row is "failing repeatedly".
REPEATED = 2
#: How many newest runs of a flow are searched for failure streaks.
STREAK_RUNS = 5
#: How far back a cron trigger's previous fire times are searched.
_HORIZON = timedelta(days=800)


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ago(moment: datetime, now: datetime) -> str:
    seconds = int((now - moment).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def schedule_text(flow: FlowSettings) -> str:
    """``cron 30 22 * * mon-fri America/New_York`` or ``every 0:15:00``."""
    if flow.cron is not None:
        return f"cron {flow.cron} {flow.timezone}"
    if flow.at_close is not None:
        codes = ", ".join(sorted({e.code for e in flow.exchanges().values()}))
        return f"at close + {flow.at_close} {codes}"
    return f"every {flow.every}"


def previous_fires(flow: FlowSettings, before: datetime, count: int = 2) -> list[datetime]:
    """The newest ``count`` fire times of a cron flow at or before ``before``, oldest first."""
    trigger = flow.trigger()
    assert not isinstance(trigger, timedelta), "only cron flows have absolute fire times"
    window = flow.min_interval() * (count + 1)
    while True:
        fires: list[datetime] = []
        previous: datetime | None = None
        cursor = before - window
        while (fire := trigger.get_next_fire_time(previous, cursor)) is not None and fire <= before:
            fires.append(fire)
            previous, cursor = fire, fire + timedelta(microseconds=1)
        if len(fires) >= count or window >= _HORIZON:
            return fires[-count:]
        window *= 4


def next_fire(flow: FlowSettings, now: datetime, last_started: datetime | None) -> datetime | None:
    """When the flow fires next: from the cron trigger, or the last start plus ``every``."""
    trigger = flow.trigger()
    if not isinstance(trigger, timedelta):
        fire: datetime | None = trigger.get_next_fire_time(None, now)
        return fire
    if last_started is None:
        return None  # an interval flow runs when the daemon starts
    periods = max(1, -(-(now - last_started) // trigger))  # whole intervals, rounded up
    return last_started + trigger * periods


def good_run_cutoff(
    flow: FlowSettings, now: datetime, max_age: timedelta | None = None
) -> datetime | None:
    """The time a good run must have started at or after for ``flow`` to be healthy.

    ``None`` when the schedule has not fired twice yet (nothing can be overdue).
    """
    if max_age is not None:
        return now - max_age
    assert flow.deadline is not None  # FlowSettings always sets one
    trigger = flow.trigger()
    if isinstance(trigger, timedelta):
        return now - 2 * trigger - flow.deadline
    fires = previous_fires(flow, now - flow.deadline, count=2)
    return fires[0] if len(fires) == 2 else None


@dataclass(frozen=True, slots=True)
class FlowHealth:
    """What ``finappd status`` knows about one flow."""

    flow: str
    schedule: str
    last_run: RunRow | None
    last_good: RunRow | None
    next_fire: datetime | None
    cutoff: datetime | None
    bars: int
    failing: Sequence[tuple[str, int, str, str]]
    #: ticker → its exchange and the rule it trades on, for each exchange no calendar knows
    no_calendar: Mapping[str, str] = field(default_factory=dict)

    @property
    def problem(self) -> str | None:
        """Why the flow is stale, or ``None`` when it is healthy."""
        if self.last_good is None:
            return "no good run yet"
        if self.cutoff is not None and self.last_good.started_at < self.cutoff:
            return (
                f"last good run started {_utc(self.last_good.started_at)}, "
                f"before the cutoff {_utc(self.cutoff)}"
            )
        return None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (times as ISO-8601 UTC text)."""
        return {
            "flow": self.flow,
            "schedule": self.schedule,
            "last_run": None if self.last_run is None else asdict(self.last_run),
            "last_good": None if self.last_good is None else asdict(self.last_good),
            "next_fire": _utc(self.next_fire),
            "cutoff": _utc(self.cutoff),
            "bars": self.bars,
            "failing": [
                {"symbol": s, "runs_in_a_row": n, "kind": k, "message": m}
                for s, n, k, m in self.failing
            ],
            "no_calendar": dict(self.no_calendar),
            "healthy": self.problem is None,
            "problem": self.problem,
        }


def flow_health(
    settings: Settings, store: Store, now: datetime, max_age: timedelta | None = None
) -> list[FlowHealth]:
    """The health of every configured flow, from ``store`` (open, read-only is enough)."""
    last = {run.flow: run for run in store.last_runs(limit=1)}
    good = store.last_good_runs()
    counts = store.bar_counts()
    health = []
    for flow in settings.flows:
        run = last.get(flow.name)
        failing = [s for s in store.failure_streaks(flow.name, STREAK_RUNS) if s[1] >= REPEATED]
        health.append(
            FlowHealth(
                flow=flow.name,
                schedule=schedule_text(flow),
                last_run=run,
                last_good=good.get(flow.name),
                next_fire=next_fire(flow, now, None if run is None else run.started_at),
                cutoff=good_run_cutoff(flow, now, max_age),
                bars=sum(counts.get(t, 0) for t in flow.tickers),
                failing=failing,
                no_calendar=describe(flow.exchanges())["no_calendar"],
            )
        )
    return health


#: Provider settings that describe its limits, shown by ``status``.
_LIMIT_KEYS = ("kind", "max_concurrency", "rate", "rates", "daily_quota", "monthly_quota")


def provider_health(
    settings: Settings, store: Store | None = None, runs: Sequence[RunRow] = ()
) -> list[dict[str, Any]]:
    """Each configured provider's limits, the flows that share it, and its state.

    The circuit, parking and key state live in the daemon's memory, so ``state`` is
    as of the newest run (in ``runs``) of a flow that uses the provider: ``ok``, or
    ``circuit_open`` / ``parked`` / ``key_refused`` when that run's tickers were turned
    away without a request (``state_detail`` says why, ``state_run`` which run).
    """
    health = []
    for name, provider in sorted(settings.providers.items()):
        entry: dict[str, Any] = {"provider": name}
        for key in _LIMIT_KEYS:
            value = getattr(provider, key, None)
            if isinstance(value, list):
                entry[key] = [str(v) for v in value]  # rates: "8/minute", "800/day"
            elif value is not None:
                entry[key] = value if isinstance(value, int | str) else str(value)
        entry["flows"] = [f.name for f in settings.flows if name in (f.provider, *f.fallback)]
        newest = max(
            (r for r in runs if r.flow in entry["flows"]), key=lambda r: r.id, default=None
        )
        if store is not None and newest is not None:
            refused = store.refusal(newest.id, name)
            entry["state"] = "ok" if refused is None else REFUSAL_STATES[refused[0]]
            entry["state_run"] = newest.id
            if refused is not None:
                entry["state_detail"] = refused[1]
        health.append(entry)
    return health


def _run_text(run: RunRow, now: datetime) -> str:
    return (
        f"#{run.id} {run.status} {run.tickers_ok or 0}/{run.tickers_total or 0} "
        f"rows {run.rows_written or 0}, started {_utc(run.started_at)} "
        f"({_ago(run.started_at, now)})" + ("" if run.daemon is None else f" by {run.daemon}")
    )


def _streak_text(streak: Streak) -> str:
    runs = f"not found in {streak.not_found_runs} runs in a row"
    if streak.delisted:
        return f"{streak.symbol} delisted? {runs}, asked again after {streak.next_check}"
    return f"{streak.symbol} {runs}"


def _print_text(
    health: list[FlowHealth],
    providers: list[dict[str, Any]],
    settings: Settings,
    now: datetime,
    streaks: Sequence[Streak] = (),
) -> None:
    for h in health:
        print(f"{h.flow}: {'ok' if h.problem is None else 'STALE'}  ({h.schedule})")
        print(f"  last run   {'-' if h.last_run is None else _run_text(h.last_run, now)}")
        if h.last_run is not None and h.last_run.error:
            print(f"             error: {h.last_run.error}")
        print(f"  last good  {'-' if h.last_good is None else _run_text(h.last_good, now)}")
        print(f"  next fire  {_utc(h.next_fire) or 'when the daemon starts'}")
        print(f"  bars       {h.bars} for {len(settings.flow(h.flow).tickers)} tickers")
        if h.failing:
            shown = ", ".join(f"{s} ({k}, {n} runs)" for s, n, k, _ in h.failing[:10])
            more = f" and {len(h.failing) - 10} more" if len(h.failing) > 10 else ""
            print(f"  failing    {shown}{more}")
        for symbol, rule in h.no_calendar.items():
            print(f"  calendar   {symbol} {rule}")
        if h.problem is not None:
            print(f"  problem    {h.problem}")
    for p in providers:
        limits = ", ".join(
            f"{k} {v}" for k, v in p.items() if k not in ("provider", "flows") and k[:5] != "state"
        )
        flows = ", ".join(p["flows"]) or "-"
        print(f"provider {p['provider']}: {limits or 'defaults'}; flows {flows}")
        if "state" in p:
            detail = f": {p['state_detail']}" if "state_detail" in p else ""
            print(f"  state      {p['state']} as of run #{p['state_run']}{detail}")
    for streak in streaks:
        print(f"ticker {_streak_text(streak)}")


def _print_report(
    settings: Settings, store: Store, now: datetime, max_age: timedelta | None
) -> bool:
    """Print the status as text; return whether every flow is healthy."""
    health = flow_health(settings, store, now, max_age)
    runs = store.last_runs(limit=5)
    counts = store.bar_counts()
    print(f"store: {store.where}  symbols: {len(counts)}  bars: {sum(counts.values())}")
    _print_text(
        health, provider_health(settings, store, runs), settings, now, not_found_streaks(store)
    )
    for line in format_usage(usage_report(store, settings, now)):
        print(f"usage {line}")
    return all(h.problem is None for h in health)


def status_report(
    settings: Settings, store: Store, now: datetime, max_age: timedelta | None = None
) -> dict[str, Any]:
    """What ``finappd status --json`` prints, read from ``store`` (open, read-only is enough)."""
    health = flow_health(settings, store, now, max_age)
    runs = store.last_runs(limit=5)
    counts = store.bar_counts()
    return {
        "store": store.where,
        "now": _utc(now),
        "healthy": all(h.problem is None for h in health),
        "flows": [h.as_dict() for h in health],
        "providers": provider_health(settings, store, runs),
        "usage": usage_report(store, settings, now),
        "runs": [asdict(r) for r in runs],
        "bars": {"symbols": len(counts), "rows": sum(counts.values())},
        "not_found": [asdict(s) for s in not_found_streaks(store)],
    }


def print_status(
    settings: Settings,
    *,
    as_json: bool,
    check: bool = False,
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> int:
    """Print the status (text or JSON); with ``check``, exit 2 when a flow is stale.

    Without ``check``: 0, or 1 when there is no database yet.
    """
    now = now or datetime.now(UTC)
    if not database_exists(settings.store):
        path = settings.store.resolved_path()
        hint = "" if path.is_absolute() else " (a relative store.path is under $STATE_DIRECTORY)"
        print(f"finappd: no database at {path} yet{hint}")
        return EXIT_STALE if check else 1
    store = open_readonly(settings.store)
    try:
        if as_json:
            data = status_report(settings, store, now, max_age)
            print(json.dumps(data, default=str))
            healthy = bool(data["healthy"])
        else:
            healthy = _print_report(settings, store, now, max_age)
    finally:
        store.close()
    if check and not healthy:
        return EXIT_STALE
    return 0


def status_line(
    settings: Settings,
    last: dict[str, tuple[str, int, int, datetime]],
    running: Sequence[str],
    next_fires: dict[str, datetime | None],
    note: str | None = None,
) -> str:
    """The daemon's one-line ``STATUS=``: each flow's last outcome and next fire.

    ``last`` maps a flow to ``(status, tickers_ok, tickers_total, finished_at)``.
    """
    parts = [note] if note else []
    for flow in settings.flows:
        name = flow.name
        if name in running:
            text = f"{name}: running"
        elif name in last:
            status, ok, total, finished = last[name]
            text = f"{name}: {status} {ok}/{total} at {finished.astimezone(UTC):%a %H:%MZ}"
        else:
            text = f"{name}: waiting"
        if (fire := next_fires.get(name)) is not None:
            text += f", next {fire.astimezone(UTC):%a %H:%MZ}"
        parts.append(text)
    return "; ".join(parts) or "no flows configured"
