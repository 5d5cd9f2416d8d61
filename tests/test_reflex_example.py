"""The Reflex example app: its background "Refresh prices" handler, run by Reflex's own event
processor, lands a run (through the daemon, or in process) and streams its progress.

What runs for real: the app module (``rx.App``, its page and state), Reflex's event
processor and in-memory state manager, the ``@rx.event(background=True)`` handler with
its ``async with self`` blocks, and the state deltas Reflex would send to the browser
(captured here in place of the websocket). What does not: the compiled frontend (``reflex
run`` builds it with bun/npm packages downloaded at first start) and the websocket.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest

from finappd.sim import SimConfig
from tests import procs
from tests.conftest import MakeServer

pytest.importorskip("reflex", reason="the example's requirements: examples/reflex_app")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "reflex_app"
TICKERS = [f"R{i:02d}" for i in range(10)]

CONFIG = """
[store]
path = "{db}"
[api]
listen = "unix:{sock}"
[providers.yahoo]
base_url = "{url}"
max_concurrency = 1
rate = "6000/minute"
[[flows]]
name = "eod"
provider = "yahoo"
tickers = [{tickers}]
cron = "0 3 1 1 *"
num_workers = 2
"""


@pytest.fixture(scope="module")
def app_module() -> Iterator[ModuleType]:
    """The example's app module, imported as ``reflex run`` would (from its directory)."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        yield importlib.import_module("finance_app.finance_app")
    finally:
        sys.path.remove(str(EXAMPLE))


class Browser:
    """Stands in for the websocket: keeps every state delta Reflex emits to the client."""

    def __init__(self) -> None:
        self.deltas: list[dict[str, Any]] = []

    async def emit_update(self, update: Any, token: str) -> None:
        self.deltas.append(update.delta)

    def seen(self, state: str) -> list[dict[str, Any]]:
        """The deltas of ``state``, var names without Reflex's suffix, in order."""
        return [
            {k.removesuffix("_rx_state_"): v for k, v in delta[state].items()}
            for delta in self.deltas
            if state in delta
        ]


async def click_refresh(app_module: ModuleType) -> list[dict[str, Any]]:
    """Run the page's refresh handler through Reflex's event processor, to its end."""
    from reflex.event import Event
    from reflex_base.event.processor.base_state_processor import BaseStateEventProcessor

    state = app_module.PricesState.get_full_name()
    browser = Browser()
    # Browser has the one method the processor calls on its websocket namespace.
    processor = BaseStateEventProcessor().configure(event_namespace=cast(Any, browser))
    async with processor:
        future = await processor.enqueue("tab-1", Event(name=f"{state}.refresh", payload={}))
        await asyncio.wait_for(future.wait_all(), timeout=90)
    return browser.seen(state)


def setup(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The finappd config the app reads ($FINAPPD_CONFIG)."""
    config = tmp_path / "finappd.toml"
    config.write_text(
        CONFIG.format(
            db=tmp_path / "d.sqlite3",
            sock=tmp_path / "api.sock",
            url=url,
            tickers=", ".join(f'"{t}"' for t in TICKERS),
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("FINAPPD_CONFIG", str(config))
    return config


def check(deltas: list[dict[str, Any]], via: str) -> None:
    """The handler showed progress mid-run, then the end, then every ticker's close."""
    merged: dict[str, Any] = {}
    for delta in deltas:
        merged |= delta
    assert merged["running"] is False
    assert (merged["status"], merged["done"], merged["total"]) == ("ok", 10, 10)
    assert merged["via"] == via
    assert merged["error"] == ""
    assert [c["symbol"] for c in merged["closes"]] == TICKERS
    statuses = [d["status"] for d in deltas if d.get("status")]  # the first: the initial state
    assert statuses[0] == "starting"
    assert statuses[-1] == "ok"
    assert any(0 < d.get("done", 0) < 10 for d in deltas)  # progress arrived mid-run
    assert merged["updates"] >= 3


def runs(tmp_path: Path) -> list[tuple[Any, ...]]:
    """``(trigger, status, tickers_ok)`` of every run."""
    with sqlite3.connect(tmp_path / "d.sqlite3") as conn:
        return conn.execute('SELECT "trigger", status, tickers_ok FROM runs').fetchall()


async def test_refresh_without_a_daemon_runs_the_flow_in_the_app(
    tmp_path: Path, sim_server: MakeServer, monkeypatch: pytest.MonkeyPatch, app_module: ModuleType
) -> None:
    """No daemon: the background task runs the flow itself, shows its progress and closes."""
    sim = await sim_server(SimConfig(latency=0.1))
    assert sim.url is not None
    setup(tmp_path, sim.url, monkeypatch)
    check(await click_refresh(app_module), via="app")
    assert runs(tmp_path) == [("api", "ok", 10)]


async def test_refresh_goes_through_the_running_daemon(
    tmp_path: Path, sim_server: MakeServer, monkeypatch: pytest.MonkeyPatch, app_module: ModuleType
) -> None:
    """With the daemon running, the background task starts the run through its API and
    follows the daemon's event stream."""
    sim = await sim_server(SimConfig(latency=0.1))
    assert sim.url is not None
    config = setup(tmp_path, sim.url, monkeypatch)
    daemon = await procs.spawn_finappd(
        "run", "--config", str(config), stdout=asyncio.subprocess.DEVNULL
    )
    try:
        async with asyncio.timeout(60):
            while not (tmp_path / "api.sock").is_socket():
                await asyncio.sleep(0.05)
        check(await click_refresh(app_module), via="daemon")
    finally:
        daemon.send_signal(signal.SIGTERM)
        await asyncio.wait_for(daemon.communicate(), timeout=30)
    assert daemon.returncode == 0
    assert runs(tmp_path) == [("api", "ok", 10)]
