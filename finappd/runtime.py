"""The runtime: store, writer, HTTP session and providers, opened once and shared by every run.

A provider instance is shared by every flow that names it, so two flows hitting
the same API at once still respect one set of limits. Its quota ledger is kept per
provider name and outlives a config reload's rebuilt instance; its writes go behind
(see :mod:`~finappd.providers.quota`) and are drained at the end of every run and when
the runtime closes, before the writer thread stops.
"""

from __future__ import annotations

import asyncio
import gc
import os
from datetime import UTC, datetime
from types import TracebackType

import aiohttp
import structlog

from finappd.calendar import prepare
from finappd.config import ProviderSettings, Settings
from finappd.coord import coord_link, shared_admission
from finappd.errors import FinappdError
from finappd.flows import RunSummary, SplitWatch, build_fetch, run_flow_once
from finappd.flows.backfill import refetch_splits
from finappd.flows.kinds import bar_state, flow_kind
from finappd.flows.run import RunEvents
from finappd.instruments import InstrumentBook, fx_pairs_needed
from finappd.providers import BaseProvider, make_provider, make_session
from finappd.providers.quota import QuotaLedger
from finappd.providers.usage import SharedUsage, StoreUsage
from finappd.store import Writer
from finappd.store.backend import store_for
from finappd.store.instruments import delisted_until, write_setting
from finappd.validate import check_settings

__all__ = ["Runtime"]

log = structlog.get_logger(__name__)

#: Seconds one quota ledger's drain may take (end of a run, shutdown) before it is logged.
USAGE_DRAIN_S = 10.0


class Runtime:
    """Everything a flow run needs; an async context manager that cleans up after itself."""

    def __init__(self, settings: Settings, *, daemon: bool = False) -> None:
        self.settings = check_settings(settings)  # a ConfigError before anything opens
        #: Who runs what this runtime runs (``runs.daemon``): the daemon is ``daemon_name``;
        #: a run by hand beside it (``run-once``, ``backfill``…) is ``daemon_name/<pid>``.
        self.name = settings.daemon_name if daemon else f"{settings.daemon_name}/{os.getpid()}"
        self.store = store_for(settings.store)
        self.writer = Writer(self.store)
        #: The daemons sharing a PostgreSQL store (fires, quotas, windows); None on SQLite.
        self.coord = coord_link(self.store, self.name)
        # The providers' quota ledgers persist through the one writer thread (on a shared
        # store the coordinator counts each request as it admits it).
        usage = StoreUsage if self.coord is None else SharedUsage
        self.usage = usage(self.store, self.writer)
        self.ledgers: dict[str, QuotaLedger] = {}
        self._session: aiohttp.ClientSession | None = None
        self.providers: dict[str, BaseProvider] = {}

    def __repr__(self) -> str:
        return f"<Runtime store={self.store!r} providers={sorted(self.providers)}>"

    async def __aenter__(self) -> Runtime:
        await self.writer.call(self.store.open)
        marked = await self.writer.call(self.store.mark_interrupted, datetime.now(UTC))
        if marked:
            log.warning("store.runs_interrupted", runs=marked)
        if self.coord is not None:
            await self.coord.open()
            await self.coord.interrupt_dead()
        settings = self.settings
        if settings.base_currency and not any(flow_kind(f.kind).rates for f in settings.flows):
            # The views can only convert with rates something fetches.
            log.warning("fx.no_flow", base_currency=settings.base_currency)
        self._session = make_session()
        self.providers = {
            name: self._make_provider(name, provider)
            for name, provider in self.settings.providers.items()
        }
        # What start-up built (modules, classes, settings, calendars) lives as long as the
        # process: frozen, the collector stops walking it on every older-generation pass.
        gc.freeze()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.drain_usage()
        finally:
            if self._session is not None:
                await self._session.close()
            if self.coord is not None:
                await self.coord.close()
            await self.writer.call(self.store.close)
        self.writer.close()

    def rebuild_provider(self, name: str, settings: ProviderSettings | None) -> None:
        """Replace provider ``name`` by a fresh instance (``None``: drop it), for runs started
        from now on; a run in flight keeps the instance it has (used by config reload)."""
        if settings is None:
            self.providers.pop(name, None)
            return
        self.providers[name] = self._make_provider(name, settings)

    def _make_provider(self, name: str, settings: ProviderSettings) -> BaseProvider:
        """Provider ``name`` counting in its name's one quota ledger (made on first use)."""
        assert self._session is not None, "the runtime is not open"
        ledger = self.ledgers.get(name)
        if ledger is None:
            ledger = QuotaLedger(name, daily=None, monthly=None, backend=self.usage)
            self.ledgers[name] = ledger
        provider = make_provider(name, settings, self._session, usage=self.usage, ledger=ledger)
        if self.coord is not None:
            provider.http.admission.shared = shared_admission(self.coord, provider.http)
        return provider

    async def drain_usage(self) -> None:
        """Write every quota ledger's unwritten increments now (the runtime's shutdown)."""
        await self._drain(list(self.ledgers.values()))

    async def _drain(self, ledgers: list[QuotaLedger]) -> None:
        """Drain ``ledgers``, each within USAGE_DRAIN_S; a stuck writer is logged, not waited."""
        for ledger in ledgers:
            try:
                async with asyncio.timeout(USAGE_DRAIN_S):
                    await ledger.drain()
            except TimeoutError:
                log.error("provider.usage_drain_timeout", ledger=repr(ledger))

    async def run_flow(
        self,
        name: str,
        trigger: str,
        *,
        now: datetime | None = None,
        events: RunEvents | None = None,
        fire_at: datetime | None = None,
    ) -> RunSummary:
        """Run the flow called ``name`` once, as of ``now`` (default: the clock's now);
        ``events`` receives its progress (:class:`~finappd.flows.run.RunProgress`);
        ``fire_at`` is the scheduled fire it runs for (None: started by hand).

        New splits met on the way have their older stored history re-fetched afterwards
        (a second run, trigger ``split-refetch``); the flow's own summary is returned.
        """
        flow = self.settings.flow(name)
        chain = [self.providers[p] for p in (flow.provider, *flow.fallback)]
        for provider in chain:
            provider.new_run()  # a key refused last run gets one fresh try
        assert flow.deadline is not None  # FlowSettings always sets one
        now = now or datetime.now(UTC)
        book = InstrumentBook(self.settings.instruments, self.settings.delisted)
        try:
            tickers = await self.writer.call(self._tickers, flow.name, book, now)
        except FinappdError as exc:
            # Like a failed start_run: no run row can record it, so the log line does.
            log.error("store.write_failed", flow=name, operation="instruments", error=str(exc))
            raise
        state = await bar_state(flow, tickers, self.store, self.writer, now)
        if state is not None or flow_kind(flow.kind).market_hours:
            # The session tables this run asks for, built off the event loop (once per
            # calendar and year in a process; the first may import exchange_calendars).
            await asyncio.to_thread(prepare, list(flow.exchanges().items()), now)
        splits = SplitWatch()
        try:
            summary = await run_flow_once(
                flow=flow.name,
                trigger=trigger,
                tickers=tickers,
                num_workers=flow.num_workers,
                deadline=flow.deadline.total_seconds(),
                fetch=build_fetch(flow, chain, now, splits=splits, state=state),
                providers=chain,
                store=self.store,
                writer=self.writer,
                instruments=book,
                events=events,
                daemon=self.name,
                fire_at=fire_at,
            )
            await refetch_splits(
                flow=flow.name,
                pending=splits.pending,
                providers=chain,
                store=self.store,
                writer=self.writer,
                num_workers=flow.num_workers,
            )
        finally:
            # A run's usage is in SQLite when it ends, whatever the flush timer says.
            await self._drain([provider.ledger for provider in chain])
        return summary

    def _tickers(self, name: str, book: InstrumentBook, now: datetime) -> list[str]:
        """Flow ``name``'s tickers for a run at ``now`` (on the writer thread).

        Each ticker has its ``instruments`` row (from the ticker and the config) before any
        answer; delisted tickers wait for their ``next_check``; an ``fx`` flow also gets the pairs
        that convert every instrument's currency into ``base_currency`` (also recorded in
        ``settings`` for the ``closes_in_base`` view).
        """
        flow = self.settings.flow(name)
        base = self.settings.base_currency
        tickers = list(flow.tickers)
        with self.store.transaction():  # one commit for the run's bookkeeping
            write_setting(self.store, "base_currency", base, now)
            book.describe(self.store, tickers, now)
        if flow_kind(flow.kind).rates and base is not None:
            tickers += fx_pairs_needed(tickers, book.currencies(self.store), base)
        waiting = delisted_until(self.store, tickers, now)
        if waiting:
            log.info("tickers.delisted_skipped", flow=name, tickers=sorted(waiting))
        return [t for t in tickers if t not in waiting]
