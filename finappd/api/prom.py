"""``GET /metrics``: the daemon's figures in the Prometheus text format (prometheus_client).

Flow figures are read from the ``runs`` table at each scrape, so they agree with it
exactly and survive restarts: ``finappd_runs_total{flow,status}`` counts finished runs
(a run is counted once it leaves ``running``; those in progress are
``finappd_runs_running``), ``finappd_tickers_total{flow,outcome}`` their tickers, and
``finappd_run_duration_seconds`` their durations (count and sum). Provider figures are
the live instances' counters since the daemon started (a reload's rebuilt provider
starts from zero, which Prometheus reads as a counter reset).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from finappd.providers import BaseProvider
from finappd.providers.breaker import Circuit
from finappd.store.runs import RunRow, RunTotals

__all__ = ["CONTENT_TYPE", "FlowFigures", "exposition"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True, slots=True)
class FlowFigures:
    """What the database says about the flows at one scrape."""

    totals: Sequence[RunTotals]
    last_good: Mapping[str, RunRow]


def _flow_families(figures: FlowFigures) -> Iterator[Metric]:
    runs = CounterMetricFamily(
        "finappd_runs", "Finished runs by flow and status.", labels=["flow", "status"]
    )
    running = GaugeMetricFamily(
        "finappd_runs_running", "Runs in progress by flow.", labels=["flow"]
    )
    tickers = CounterMetricFamily(
        "finappd_tickers", "Tickers of finished runs by outcome.", labels=["flow", "outcome"]
    )
    duration = SummaryMetricFamily(
        "finappd_run_duration_seconds", "Durations of finished runs.", labels=["flow"]
    )
    ok: dict[str, int] = {}
    failed: dict[str, int] = {}
    finished: dict[str, tuple[int, float]] = {}
    for row in figures.totals:
        if row.status == "running":
            running.add_metric([row.flow], row.runs)
            continue
        runs.add_metric([row.flow, row.status], row.runs)
        ok[row.flow] = ok.get(row.flow, 0) + row.tickers_ok
        failed[row.flow] = failed.get(row.flow, 0) + row.tickers_failed
        count, seconds = finished.get(row.flow, (0, 0.0))
        finished[row.flow] = (count + row.finished, seconds + row.seconds)
    for flow in ok:
        tickers.add_metric([flow, "ok"], ok[flow])
        tickers.add_metric([flow, "failed"], failed[flow])
    for flow, (count, seconds) in finished.items():
        duration.add_metric([flow], count_value=count, sum_value=seconds)
    last_good = GaugeMetricFamily(
        "finappd_last_good_run_timestamp_seconds",
        "Start of each flow's newest regular run that ended ok or partial (Unix time).",
        labels=["flow"],
    )
    for flow, run in sorted(figures.last_good.items()):
        last_good.add_metric([flow], run.started_at.timestamp())
    yield from (runs, running, tickers, duration, last_good)


def _provider_families(providers: Mapping[str, BaseProvider]) -> Iterator[Metric]:
    labels = ["provider"]
    requests = CounterMetricFamily("finappd_provider_requests", "Requests sent.", labels=labels)
    retries = CounterMetricFamily("finappd_provider_retries", "Requests retried.", labels=labels)
    limited = CounterMetricFamily(
        "finappd_provider_rate_limited", "Answers saying slow down (HTTP 429).", labels=labels
    )
    in_flight = GaugeMetricFamily(
        "finappd_provider_in_flight", "Requests in flight now.", labels=labels
    )
    waits = HistogramMetricFamily(
        "finappd_provider_wait_seconds",
        "Time a request waited for its turn (semaphore, rate windows, 429 pause).",
        labels=labels,
    )
    used = GaugeMetricFamily(
        "finappd_provider_quota_used",
        "Requests counted against the quota.",
        labels=[*labels, "period"],
    )
    limit = GaugeMetricFamily(
        "finappd_provider_quota_limit", "The quota (absent: none).", labels=[*labels, "period"]
    )
    circuit = GaugeMetricFamily(
        "finappd_provider_circuit_state",
        "The circuit breaker's state (1 for the current one).",
        labels=[*labels, "state"],
    )
    for name, provider in sorted(providers.items()):
        client = provider.http  # the provider's polite client keeps its counters
        requests.add_metric([name], client.requests)
        retries.add_metric([name], client.retries)
        limited.add_metric([name], client.rate_limited)
        in_flight.add_metric([name], client.gauge.in_flight)
        buckets = client.gauge.wait_buckets
        waits.add_metric([name], buckets.cumulative(), sum_value=buckets.total)
        ledger = client.ledger
        for period, count, quota in (
            ("day", ledger.day_used, ledger.daily),
            ("month", ledger.month_used, ledger.monthly),
        ):
            used.add_metric([name, period], count)
            if quota is not None:
                limit.add_metric([name, period], quota)
        for state in Circuit:
            circuit.add_metric([name, str(state)], float(client.breaker.state is state))
    yield from (requests, retries, limited, in_flight, waits, used, limit, circuit)


class _Snapshot(Collector):
    """Metric families computed once, for one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def exposition(figures: FlowFigures, providers: Mapping[str, BaseProvider]) -> bytes:
    """The text the scrape gets: the flows' figures, then the providers'."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([*_flow_families(figures), *_provider_families(providers)]))
    return generate_latest(registry)
