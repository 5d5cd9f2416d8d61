"""Flows: what runs in parallel. One module per flow kind, and the registry mapping config to it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from finappd.config import FlowSettings
from finappd.flows.actions import SplitWatch
from finappd.flows.crypto import crypto_fetch
from finappd.flows.daily_bars import daily_bars_fetch, lookback_range
from finappd.flows.fx import fx_fetch
from finappd.flows.incremental import BarState, Incremental
from finappd.flows.quotes import IsOpen, flow_is_open, quotes_fetch
from finappd.flows.run import Fetch, RunSummary, TickerResult, run_flow_once
from finappd.providers import BaseProvider

__all__ = [
    "Fetch",
    "RunSummary",
    "SplitWatch",
    "TickerResult",
    "build_fetch",
    "run_flow_once",
]


def build_fetch(
    flow: FlowSettings,
    providers: Sequence[BaseProvider],
    now: datetime,
    *,
    splits: SplitWatch | None = None,
    is_open: IsOpen | None = None,
    state: BarState | None = None,
) -> Fetch:
    """The per-ticker fetch for ``flow``'s kind over its provider chain (primary first).

    ``splits`` (daily_bars) collects new splits whose history must be re-fetched;
    ``is_open`` (quotes) says whether a ticker's market is in session;
    ``state`` (daily_bars) makes the fetch incremental (flows/incremental.py).
    """
    if flow.kind == "daily_bars":
        start, end = lookback_range(flow, now)
        incremental = None if state is None else Incremental.for_flow(flow, state, now)
        return daily_bars_fetch(providers, start, end, actions=splits, incremental=incremental)
    if flow.kind == "quotes":
        return quotes_fetch(providers, now, is_open or flow_is_open(flow))
    if flow.kind == "fx":
        start, end = lookback_range(flow, now)
        return fx_fetch(providers, start, end)
    if flow.kind == "crypto":
        return crypto_fetch(flow, providers, now)
    raise AssertionError(f"unhandled flow kind {flow.kind!r}")  # config validation forbids it
