"""The daemon on PostgreSQL (``store.url``): a flow run lands every ticker whole, a second run
is incremental, ``status`` reads it back, and the password never shows."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import psycopg
import pytest
from structlog.testing import capture_logs

from finappd.config import Settings
from finappd.coord import Coordinator
from finappd.errors import StoreError
from finappd.runtime import Runtime
from finappd.sim import SimConfig, SimServer
from finappd.snapshot import export_snapshot
from finappd.status import status_report
from finappd.store import Store
from finappd.store.backend import open_readonly
from finappd.store.pg import PgStore
from tests.conftest import MakeServer
from tests.pg import PgServer

TICKERS = [f"T{i:03d}" for i in range(40)] + ["^GSPC", "VOD.L", "7203.T"]


async def simulator_and_database(
    sim_server: MakeServer, pg_server: PgServer, config: SimConfig | None = None
) -> tuple[SimServer, str]:
    """A running simulator and the URL of a new database for one test."""
    sim = await sim_server(config or SimConfig())
    assert sim.url is not None
    return sim, pg_server.create()


def settings_for(url: str, sim: SimServer, password: str | None = None) -> Settings:
    """One hourly yahoo flow of TICKERS on the simulator, stored in PostgreSQL at ``url``."""
    store: dict[str, object] = {"url": url}
    if password is not None:
        store["password"] = password
    return Settings.model_validate(
        {
            "store": store,
            "providers": {
                "yahoo": {"base_url": sim.url, "max_concurrency": 4, "rate": "10000/minute"}
            },
            "flows": [
                {"name": "eod", "provider": "yahoo", "tickers": TICKERS, "every": "1h"},
            ],
        }
    )


async def test_a_run_lands_in_postgresql_and_status_reads_it(
    pg_server: PgServer, sim_server: MakeServer
) -> None:
    sim, url = await simulator_and_database(sim_server, pg_server)
    settings = settings_for(url, sim)
    async with Runtime(settings) as runtime:
        first = await runtime.run_flow("eod", "manual")
        served = sim.stats.requests
        second = await runtime.run_flow("eod", "manual")
    assert (first.status, first.tickers_ok, first.tickers_failed) == ("ok", len(TICKERS), 0)
    assert second.status == "ok"
    assert sim.stats.requests - served <= len(TICKERS)  # incremental: nothing asked twice over
    with psycopg.connect(url, connect_timeout=10) as conn:
        symbols = {r[0] for r in conn.execute("SELECT DISTINCT symbol FROM bars")}
        runs = conn.execute("SELECT status, tickers_ok FROM runs ORDER BY id").fetchall()
        pence = conn.execute("SELECT currency FROM latest_close WHERE symbol = 'VOD.L'").fetchone()
        instruments = conn.execute("SELECT count(*) FROM instruments").fetchone()
    assert symbols == set(TICKERS)
    assert runs == [("ok", len(TICKERS)), ("ok", len(TICKERS))]
    assert pence == ("GBP",)  # stored in the major unit, as on SQLite
    assert instruments == (len(TICKERS),)
    reader = open_readonly(settings.store)
    try:
        report = status_report(settings, reader, datetime.now(UTC))
    finally:
        reader.close()
    assert report["store"] == url
    assert report["bars"]["symbols"] == len(TICKERS)
    assert [f["flow"] for f in report["flows"]] == ["eod"]
    # Who ran it: a run by hand is this process, beside the daemon's own name.
    assert report["flows"][0]["last_run"]["daemon"] == f"{settings.daemon_name}/{os.getpid()}"


async def test_the_password_is_used_and_never_shown(
    pg_server: PgServer, sim_server: MakeServer
) -> None:
    """A role with a password connects with store.password; no log line or error holds it."""
    sim, url = await simulator_and_database(sim_server, pg_server)
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("DROP ROLE IF EXISTS finappd_pw")
        conn.execute("CREATE ROLE finappd_pw LOGIN PASSWORD 'sentinel-pw-42'")
        conn.execute(f'ALTER DATABASE "{database}" OWNER TO finappd_pw')
    host = url.split("@", 1)[1]
    role_url = f"postgresql://finappd_pw@{host}"
    with capture_logs() as logs:
        async with Runtime(settings_for(role_url, sim, "sentinel-pw-42")) as runtime:
            summary = await runtime.run_flow("eod", "manual")
    assert summary.status == "ok"
    assert "sentinel-pw-42" not in json.dumps(logs, default=str)
    with pytest.raises(StoreError, match="password authentication failed") as caught:
        async with Runtime(settings_for(role_url, sim, "wrong-pw")):
            pass
    assert "wrong-pw" not in str(caught.value)


async def test_export_snapshot_from_postgresql_writes_a_sqlite_file_to_open(
    pg_server: PgServer, sim_server: MakeServer, tmp_path: Path
) -> None:
    """`finappd export-snapshot` with store.url: a SQLite file of the same schema and rows."""
    sim, url = await simulator_and_database(sim_server, pg_server)
    settings = settings_for(url, sim)
    async with Runtime(settings) as runtime:
        await runtime.run_flow("eod", "manual")
    target = tmp_path / "copy.sqlite3"
    snapshot = export_snapshot(settings.store, target)
    assert snapshot.path == target
    assert [p.name for p in tmp_path.iterdir()] == ["copy.sqlite3"]  # noqa: ASYNC240
    with psycopg.connect(url, connect_timeout=10) as conn:
        want = {
            table: sorted(map(tuple, conn.execute(f"SELECT * FROM {table}")))  # noqa: S608
            for table in ("bars", "runs", "instruments", "latest_close")
        }
    with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as copy:
        got = {
            table: sorted(copy.execute(f"SELECT * FROM {table}"))  # noqa: S608
            for table in want
        }
        mode = copy.execute("PRAGMA journal_mode").fetchone()
    assert got == want
    assert len(got["bars"]) > len(TICKERS)
    assert mode == ("delete",)
    with Store(target).open(readonly=True) as reader:
        assert reader.bar_counts().keys() == set(TICKERS)


async def test_a_reader_of_postgresql_sees_whole_tickers_only(
    pg_server: PgServer, sim_server: MakeServer
) -> None:
    """While a run writes 600 tickers, a reader querying in a loop never sees a ticker with
    fewer rows than one fetch has: a ticker's rows land in one transaction."""
    sim, url = await simulator_and_database(sim_server, pg_server, SimConfig(latency=0.002))
    tickers = [f"W{i:03d}" for i in range(600)]
    settings = settings_for(url, sim)
    settings.flows[0].tickers = tickers
    stop = threading.Event()
    seen: set[int] = set()
    snapshots = [0]

    def read() -> None:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            while not stop.is_set():
                rows = conn.execute("SELECT symbol, count(*) FROM bars GROUP BY symbol")
                seen.update(n for _, n in rows)
                snapshots[0] += 1

    reader = threading.Thread(target=read)
    async with Runtime(settings) as runtime:
        reader.start()
        try:
            summary = await runtime.run_flow("eod", "manual")
        finally:
            stop.set()
            reader.join(10)
    assert summary.status == "ok"
    with psycopg.connect(url, connect_timeout=10) as conn:
        final = {n for _, n in conn.execute("SELECT symbol, count(*) FROM bars GROUP BY symbol")}
    assert len(final) == 1  # every ticker of this listing has the same days
    assert snapshots[0] > 5
    assert seen <= final, (seen, final)


async def test_a_quota_on_postgresql_holds_across_runs_and_restarts(
    pg_server: PgServer, sim_server: MakeServer
) -> None:
    """daily_quota = 5 on PostgreSQL: 5 of 8 tickers are fetched, 3 refused; a new runtime
    (a restart) reads the spent day from the database and sends nothing more (the 5 have
    their bars already: the incremental plan asks nothing for them).

    The runs are as of an evening after New York's close: during a session its bar is
    provisional and every run asks for it again (flows/incremental.py), which would
    make the second run's outcome depend on the hour the test runs at."""
    sim, url = await simulator_and_database(sim_server, pg_server)
    settings = settings_for(url, sim)
    settings.flows[0].tickers = [f"Q{i}" for i in range(8)]
    settings.providers["yahoo"].daily_quota = 5
    settings.providers["yahoo"].max_concurrency = 1
    evening = datetime.combine(datetime.now(UTC).date() - timedelta(days=7), time(22), UTC)
    async with Runtime(settings) as runtime:
        first = await runtime.run_flow("eod", "manual", now=evening)
    async with Runtime(settings) as runtime:
        second = await runtime.run_flow("eod", "manual", now=evening)
    assert (first.tickers_ok, first.tickers_failed) == (5, 3)
    assert (second.tickers_ok, second.tickers_failed) == (5, 3)
    assert sim.stats.requests == 5
    with psycopg.connect(url, connect_timeout=10) as conn:
        [(spent,)] = conn.execute("SELECT sum(requests) FROM provider_usage").fetchall()
        kinds = conn.execute("SELECT kind, count(*) FROM fetch_errors GROUP BY kind").fetchall()
    assert spent == 5
    assert kinds == [("quota_exhausted", 6)]


def test_the_postgresql_store_outlives_a_server_restart(pg_server: PgServer) -> None:
    """A call on a session the server ended fails as StoreError (that batch is recorded
    failed); the next call connects again and lands."""
    url = pg_server.create()
    with PgStore(url) as store:
        run_id = store.start_run("eod", "schedule", 1, datetime.now(UTC))
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StoreError):
            store.record_error(run_id, "AAPL", "yahoo", "timeout", "slow", datetime.now(UTC))
        store.record_error(run_id, "MSFT", "yahoo", "timeout", "slow", datetime.now(UTC))
        assert [e[0] for e in store.errors_for_run(run_id)] == ["MSFT"]


async def test_a_run_by_hand_beside_the_daemon_shares_its_limits_not_its_name(
    pg_server: PgServer, sim_server: MakeServer
) -> None:
    """`run-once` on the daemon's machine (same daemon_name) runs while the daemon holds the
    name, counts in the same quota, and is never taken for the daemon's crashed run."""
    sim, url = await simulator_and_database(sim_server, pg_server)
    settings = settings_for(url, sim)
    settings.providers["yahoo"].daily_quota = 100
    PgStore(url).open().close()
    daemon = Coordinator(url, daemon=settings.daemon_name)
    daemon.open()  # the daemon, holding its name
    try:
        async with Runtime(settings) as runtime:
            summary = await runtime.run_flow("eod", "manual")
        assert summary.status == "ok"
        assert daemon.interrupt_dead(datetime.now(UTC)) == 0
    finally:
        daemon.close()
    with psycopg.connect(url, connect_timeout=10) as conn:
        [(spent,)] = conn.execute("SELECT sum(requests) FROM provider_usage").fetchall()
    assert spent == len(TICKERS) == sim.stats.requests
