"""Flows: what runs in parallel. One module per flow kind, and the registry mapping config to it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from finappd.config import FlowSettings
from finappd.flows.daily_bars import daily_bars_fetch, lookback_range
from finappd.flows.run import Fetch, RunSummary, TickerResult, run_flow_once
from finappd.providers import BaseProvider

__all__ = ["Fetch", "RunSummary", "TickerResult", "build_fetch", "run_flow_once"]


def build_fetch(flow: FlowSettings, providers: Sequence[BaseProvider], now: datetime) -> Fetch:
    """The per-ticker fetch for ``flow``'s kind over its provider chain (primary first)."""
    if flow.kind == "daily_bars":
        start, end = lookback_range(flow, now)
        return daily_bars_fetch(providers, start, end)
    raise AssertionError(f"unhandled flow kind {flow.kind!r}")  # config validation forbids it
