"""The runtime: store, writer, HTTP session and providers, opened once and shared by every run.

A provider instance is shared by every flow that names it, so two flows hitting
the same API at once still respect one set of limits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType

import aiohttp
import structlog

from finappd.config import ProviderSettings, Settings
from finappd.flows import RunSummary, SplitWatch, build_fetch, run_flow_once
from finappd.flows.backfill import refetch_splits
from finappd.flows.incremental import load_state, window_since
from finappd.providers import BaseProvider, make_provider, make_session
from finappd.providers.usage import StoreUsage
from finappd.store import Store, Writer

__all__ = ["Runtime"]

log = structlog.get_logger(__name__)


class Runtime:
    """Everything a flow run needs; an async context manager that cleans up after itself."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        store = settings.store
        self.store = Store(
            store.resolved_path(),
            synchronous=store.synchronous,
            busy_timeout=store.busy_timeout.total_seconds(),
        )
        self.writer = Writer(self.store)
        # The providers' quota ledgers persist through the one writer thread.
        self.usage = StoreUsage(self.store, self.writer)
        self._session: aiohttp.ClientSession | None = None
        self.providers: dict[str, BaseProvider] = {}

    def __repr__(self) -> str:
        return f"<Runtime store={self.store!r} providers={sorted(self.providers)}>"

    async def __aenter__(self) -> Runtime:
        await self.writer.call(self.store.open)
        marked = await self.writer.call(self.store.mark_interrupted, datetime.now(UTC))
        if marked:
            log.warning("store.runs_interrupted", runs=marked)
        self._session = make_session()
        self.providers = {
            name: make_provider(name, provider, self._session, usage=self.usage)
            for name, provider in self.settings.providers.items()
        }
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
        await self.writer.call(self.store.close)
        self.writer.close()

    def rebuild_provider(self, name: str, settings: ProviderSettings | None) -> None:
        """Replace provider ``name`` by a fresh instance (``None``: drop it), for runs started
        from now on; a run in flight keeps the instance it has (used by config reload)."""
        if settings is None:
            self.providers.pop(name, None)
            return
        assert self._session is not None, "the runtime is not open"
        self.providers[name] = make_provider(name, settings, self._session, usage=self.usage)

    async def run_flow(self, name: str, trigger: str, *, now: datetime | None = None) -> RunSummary:
        """Run the flow called ``name`` once, as of ``now`` (default: the clock's now).

        New splits met on the way have their older stored history re-fetched afterwards
        (a second run, trigger ``split-refetch``); the flow's own summary is returned.
        """
        flow = self.settings.flow(name)
        chain = [self.providers[p] for p in (flow.provider, *flow.fallback)]
        for provider in chain:
            provider.new_run()  # a key refused last run gets one fresh try
        assert flow.deadline is not None  # FlowSettings always sets one
        now = now or datetime.now(UTC)
        state = None
        if flow.kind == "daily_bars" and flow.incremental:
            since = window_since(now, flow.revision_days)
            state = await self.writer.call(load_state, self.store, flow.tickers, since)
        splits = SplitWatch()
        summary = await run_flow_once(
            flow=flow.name,
            trigger=trigger,
            tickers=flow.tickers,
            num_workers=flow.num_workers,
            deadline=flow.deadline.total_seconds(),
            fetch=build_fetch(flow, chain, now, splits=splits, state=state),
            providers=chain,
            store=self.store,
            writer=self.writer,
        )
        await refetch_splits(
            flow=flow.name,
            pending=splits.pending,
            providers=chain,
            store=self.store,
            writer=self.writer,
            num_workers=flow.num_workers,
        )
        return summary
