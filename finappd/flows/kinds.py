"""The flow kinds, one row each: what a kind needs, how it fetches, plans, backfills.

Every module that treats kinds differently looks the row up here (:func:`flow_kind`):
the config check (the provider capability a kind needs), the run (its fetch), the dry
run (the tickers a run would request), backfill and gap fill (the fetch of a date
range, and whether its rows are daily bars with a trading calendar). Adding a kind is
adding its module and its row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType

from finappd.config import FlowSettings
from finappd.flows.actions import SplitWatch, store_actions
from finappd.flows.crypto import crypto_fetch
from finappd.flows.daily_bars import daily_bars_fetch, lookback_range
from finappd.flows.fx import fx_fetch
from finappd.flows.incremental import BarState, Incremental, load_state, window_since
from finappd.flows.quotes import IsOpen, flow_is_open, quotes_fetch
from finappd.flows.run import Fetch
from finappd.pairs import fx_pair
from finappd.providers import BaseProvider
from finappd.providers.verdicts import Capability
from finappd.store import Store, Writer

__all__ = ["FLOW_KINDS", "FlowKind", "RunInputs", "bar_state", "flow_kind"]


@dataclass(frozen=True, slots=True)
class RunInputs:
    """What a run hands its kind's fetch; each kind uses what concerns it."""

    #: Collects new splits whose older history must be re-fetched (daily bars).
    splits: SplitWatch | None = None
    #: Whether a ticker's market is in session (quotes; None: the flow's calendars).
    is_open: IsOpen | None = None
    #: The stored bars an incremental run plans from (daily bars; None: full lookback).
    state: BarState | None = None


#: ``fetch(flow, providers, now, inputs)``: the per-ticker fetch of one run.
BuildFetch = Callable[[FlowSettings, Sequence[BaseProvider], datetime, RunInputs], Fetch]
#: ``plan(flow, now, state)``: the tickers a run would send a request for.
Plan = Callable[[FlowSettings, datetime, BarState | None], list[str]]
#: ``history(providers, start, end)``: the per-ticker fetch of one date range.
History = Callable[[Sequence[BaseProvider], date, date], Fetch]


@dataclass(frozen=True, slots=True)
class FlowKind:
    """One flow kind (``flows.<i>.kind``) and everything that differs between kinds."""

    name: str
    #: What every provider of its chain must serve.
    capability: Capability
    fetch: BuildFetch
    #: The dry run's request count comes from this.
    plan: Plan
    #: How backfill, gap fill and split re-fetch ask for a range; None: no history.
    history: History | None = None
    #: Whether its rows are daily bars judged against a trading calendar (``finappd gaps``).
    gaps: bool = False
    #: Whether a run plans from the stored bars (and ``incremental = false`` opts out).
    incremental: bool = False
    #: Whether a run asks each ticker's market if it is in session now.
    market_hours: bool = False
    #: Whether its rows are currency rates, so it also fetches the pairs that convert
    #: every instrument into ``base_currency``.
    rates: bool = False


def _daily_bars(
    flow: FlowSettings, providers: Sequence[BaseProvider], now: datetime, inputs: RunInputs
) -> Fetch:
    start, end = lookback_range(flow, now)
    state = inputs.state
    incremental = None if state is None else Incremental.for_flow(flow, state, now)
    return daily_bars_fetch(providers, start, end, actions=inputs.splits, incremental=incremental)


def _quotes(
    flow: FlowSettings, providers: Sequence[BaseProvider], now: datetime, inputs: RunInputs
) -> Fetch:
    return quotes_fetch(providers, now, inputs.is_open or flow_is_open(flow))


def _fx(
    flow: FlowSettings, providers: Sequence[BaseProvider], now: datetime, inputs: RunInputs
) -> Fetch:
    start, end = lookback_range(flow, now)
    return fx_fetch(providers, start, end)


def _crypto(
    flow: FlowSettings, providers: Sequence[BaseProvider], now: datetime, inputs: RunInputs
) -> Fetch:
    return crypto_fetch(flow, providers, now)


def _plan_stored(flow: FlowSettings, now: datetime, state: BarState | None) -> list[str]:
    """Tickers with something new by the store and the calendar (all, without a state)."""
    if state is None:
        return list(flow.tickers)
    planner = Incremental.for_flow(flow, state, now)
    return [t for t in flow.tickers if planner.range_for(t) is not None]


def _plan_open(flow: FlowSettings, now: datetime, state: BarState | None) -> list[str]:
    """Tickers whose market is in session."""
    is_open = flow_is_open(flow)
    return [t for t in flow.tickers if is_open(t, now)]


def _is_pair(symbol: str) -> bool:
    try:
        fx_pair(symbol)
    except ValueError:
        return False  # the run records it not_found without a request
    return True


def _plan_pairs(flow: FlowSettings, now: datetime, state: BarState | None) -> list[str]:
    """Tickers that spell a currency pair."""
    return [t for t in flow.tickers if _is_pair(t)]


def _plan_all(flow: FlowSettings, now: datetime, state: BarState | None) -> list[str]:
    """Every ticker, once."""
    return list(flow.tickers)


def _bar_history(providers: Sequence[BaseProvider], start: date, end: date) -> Fetch:
    """Daily bars of a range, storing the actions they carry as they are."""
    return daily_bars_fetch(providers, start, end, actions=store_actions)


#: Flow kind name → its row.
FLOW_KINDS: Mapping[str, FlowKind] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            FlowKind(
                "daily_bars",
                Capability.DAILY_BARS,
                _daily_bars,
                _plan_stored,
                history=_bar_history,
                gaps=True,
                incremental=True,
            ),
            FlowKind("quotes", Capability.QUOTE, _quotes, _plan_open, market_hours=True),
            FlowKind("fx", Capability.FX, _fx, _plan_pairs, history=fx_fetch, rates=True),
            FlowKind(
                "crypto",
                Capability.CRYPTO,
                _crypto,
                _plan_all,
                history=_bar_history,
                gaps=True,
            ),
        )
    }
)


def flow_kind(name: str) -> FlowKind:
    """The row of flow kind ``name``; ValueError naming the known kinds if there is none."""
    try:
        return FLOW_KINDS[name]
    except KeyError:
        known = ", ".join(sorted(FLOW_KINDS))
        raise ValueError(f"unknown flow kind {name!r} (known: {known})") from None


async def bar_state(
    flow: FlowSettings, tickers: Sequence[str], store: Store, writer: Writer, now: datetime
) -> BarState | None:
    """The stored bars of ``tickers`` a run of ``flow`` at ``now`` plans from; None: it
    fetches its lookback."""
    if not (flow_kind(flow.kind).incremental and flow.incremental):
        return None
    since = window_since(now, flow.revision_days)
    return await writer.call(load_state, store, tickers, since)
