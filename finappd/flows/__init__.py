"""Flows: what runs in parallel. One module per flow kind, and their table (flows/kinds.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from finappd.config import FlowSettings
from finappd.flows.actions import SplitWatch
from finappd.flows.incremental import BarState
from finappd.flows.kinds import FLOW_KINDS, FlowKind, RunInputs, flow_kind
from finappd.flows.quotes import IsOpen
from finappd.flows.run import Fetch, RunSummary, TickerResult, run_flow_once
from finappd.providers import BaseProvider

__all__ = [
    "FLOW_KINDS",
    "Fetch",
    "FlowKind",
    "RunSummary",
    "SplitWatch",
    "TickerResult",
    "build_fetch",
    "flow_kind",
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
    ``is_open`` (quotes) says whether a ticker's market is in session (default: on the
    flow's calendars);
    ``state`` (daily_bars) makes the fetch incremental (flows/incremental.py).
    """
    inputs = RunInputs(splits=splits, is_open=is_open, state=state)
    return flow_kind(flow.kind).fetch(flow, providers, now, inputs)
