"""A ticker is planned and judged on the exchange its ``instruments`` row names.

The row's exchange comes from the provider's metadata (Yahoo's ``exchangeName``, Twelve
Data's ``mic_code``) or the config's ``[instruments]``; it wins over the ticker's suffix,
so a ticker with no suffix that trades in Tokyo is never given New York's calendar.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from finappd.flows.gaps import flow_gaps
from finappd.flows.incremental import Incremental, load_state
from finappd.instruments import stored_exchanges
from finappd.store import Store
from finappd.store.instruments import Instrument, record_described
from tests.conftest import one_flow

NOW = datetime(2024, 11, 6, 12, tzinfo=UTC)
#: Monday 2024-11-04: Tokyo is shut (Culture Day, observed), New York trades.
CULTURE_DAY = date(2024, 11, 4)


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "x.sqlite3").open()
    record_described(
        store,
        [
            Instrument("ACME", exchange="JPX", exchange_timezone="Asia/Tokyo", provider="yahoo"),
            Instrument("NOWHERE", exchange=None, provider="yahoo"),
        ],
        NOW,
    )
    return store


def test_the_rows_exchange_is_read_as_a_mic(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        venues = stored_exchanges(store, ["ACME", "NOWHERE", "UNSEEN"])
    finally:
        store.close()
    assert {s: v.code for s, v in venues.items()} == {"ACME": "XTKS"}


def test_the_planner_and_gaps_use_the_instruments_exchange(tmp_path: Path) -> None:
    settings = one_flow(tmp_path / "x.sqlite3", "yahoo", {}, ["ACME", "NOWHERE"])
    flow = settings.flows[0]
    store = _store(tmp_path)
    try:
        state = load_state(store, flow.tickers, date(2024, 10, 1))
    finally:
        store.close()
    planner = Incremental.for_flow(flow, state, NOW)
    assert planner.exchange_of("ACME").code == "XTKS"
    assert planner.exchange_of("NOWHERE").code == "XNYS"  # no suffix, no row exchange: US
    stored = {d for d in (date(2024, 10, 28 + i) for i in range(4))} | {date(2024, 11, 1)}
    gaps = flow_gaps(flow, {"ACME": stored, "NOWHERE": stored}, NOW, state.exchanges)
    labels = {s: {g.day: g.label for g in v}.get(CULTURE_DAY) for s, v in gaps.items()}
    assert labels == {"ACME": "holiday", "NOWHERE": "missing"}
