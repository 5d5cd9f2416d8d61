"""Notifications: one Apprise message per condition change to a local receiver, and the ping."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from finappd.api import RunBoard
from finappd.config import Settings
from finappd.flows.run import RunProgress
from finappd.notify import Change, Notifier, changes
from finappd.store import Store
from tests import procs
from tests.conftest import MakeServer


@dataclass
class Receiver:
    """A local HTTP server recording what Apprise's ``json://`` and the ping send it."""

    url: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    pings: list[str] = field(default_factory=list)

    async def wait(self, count: int, within: float = 20) -> list[dict[str, Any]]:
        """The messages, once there are at least ``count``."""
        async with asyncio.timeout(within):
            while len(self.messages) < count:
                await asyncio.sleep(0.02)
        return self.messages


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver on a free loopback port."""
    found = Receiver()

    async def hook(request: web.Request) -> web.Response:
        found.messages.append(await request.json())
        return web.json_response({})

    async def ping(request: web.Request) -> web.Response:
        found.pings.append(request.path_qs)
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/ping/{uuid}", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"127.0.0.1:{port}"
    yield found
    await runner.cleanup()


@dataclass
class Source:
    """The daemon as the notifier sees it."""

    settings: Settings
    board: RunBoard = field(default_factory=RunBoard)


def make_settings(db: Path, **notify: Any) -> Settings:
    """One hourly flow ``eod`` on yahoo, storing into ``db``, with ``[notify]`` as given."""
    return Settings.model_validate(
        {
            "store": {"path": str(db)},
            "notify": notify,
            "flows": [{"name": "eod", "provider": "yahoo", "tickers": ["A", "B"], "every": "1h"}],
        }
    )


AddRun = Callable[..., int]


@pytest.fixture
def add_run(tmp_path: Path) -> AddRun:
    """Record a finished run of eod (its failures as ``kind`` errors of yahoo), now."""

    def add(status: str, kind: str | None = None) -> int:
        now = datetime.now(UTC)
        with Store(tmp_path / "d.sqlite3") as store:
            run_id = store.start_run("eod", "schedule", 2, now)
            failed = 0 if status == "ok" else 2
            for symbol in ("A", "B")[:failed]:
                store.record_error(run_id, symbol, "yahoo", kind or "server", "boom", now)
            store.finish_run(
                run_id,
                status=status,
                tickers_ok=2 - failed,
                tickers_failed=failed,
                rows_written=0,
                error=None if status == "ok" else "every ticker failed",
                now=now,
            )
        return run_id

    return add


def test_changes_says_each_condition_once_until_it_changes() -> None:
    """A condition is reported when it starts and when it ends, never while it stays."""
    said: dict[str, str] = {}
    assert changes(said, {"stale:eod": None}) == []
    assert changes(said, {"stale:eod": "old"}) == [Change("stale:eod", "old")]
    assert changes(said, {"stale:eod": "older"}) == []
    assert changes(said, {"stale:eod": None, "failing:eod": None}) == [Change("stale:eod", None)]
    assert changes(said, {"stale:eod": None}) == []
    assert said == {}


async def test_one_message_per_condition_change_none_repeated(
    tmp_path: Path, receiver: Receiver, add_run: AddRun
) -> None:
    """Failing runs, staleness, a refused key and their recoveries each send one message to
    the json:// receiver; checks that find nothing new send nothing."""
    settings = make_settings(
        tmp_path / "d.sqlite3", urls=[f"json://{receiver.url}/hook"], failed_runs=2
    )
    Store(tmp_path / "d.sqlite3").open().close()
    notifier = Notifier(Source(settings))
    await notifier.start()
    try:
        async with asyncio.timeout(10):
            while notifier.checks == 0:  # the periodic check's first round is over
                await asyncio.sleep(0.01)
        assert notifier.said == {}  # a flow that never ran is new, not stale

        add_run("failed")
        assert {c.key for c in await notifier.check()} == {"stale:eod"}  # no good run yet
        add_run("failed")
        assert {c.key for c in await notifier.check()} == {"failing:eod"}
        add_run("failed")
        assert await notifier.check() == []
        await receiver.wait(2)

        add_run("ok")
        assert {(c.key, c.problem) for c in await notifier.check()} == {
            ("stale:eod", None),
            ("failing:eod", None),
        }
        assert await notifier.check() == []
        await receiver.wait(4)

        add_run("failed", kind="auth")
        assert [c.key for c in await notifier.check()] == ["key_refused:yahoo"]
        add_run("ok")
        assert [(c.key, c.problem) for c in await notifier.check()] == [("key_refused:yahoo", None)]
        add_run("failed", kind="quota_exhausted")
        assert [c.key for c in await notifier.check()] == ["quota_spent:yahoo"]
        add_run("ok")
        assert [(c.key, c.problem) for c in await notifier.check()] == [("quota_spent:yahoo", None)]
        messages = await receiver.wait(8)
    finally:
        await notifier.stop()
    await asyncio.sleep(0.2)
    assert len(messages) == 8
    titles = [m["title"] for m in messages]
    assert len(set(titles)) == len(titles)  # no message said twice
    for key in ("stale:eod", "failing:eod", "key_refused:yahoo", "quota_spent:yahoo"):
        assert [t for t in titles if t.endswith(key)] == [
            f"finappd: {key}",
            f"finappd: recovered {key}",
        ]
    assert messages[0]["type"] == "info"
    assert "eod" in messages[0]["message"]
    assert notifier.sent == 8


async def test_ping_after_each_good_run_only(tmp_path: Path, receiver: Receiver) -> None:
    """The ping URL gets one GET per run that ends ok or partial, none for others."""
    ping = f"http://{receiver.url}/ping/0f9e-uuid?from=finappd"
    source = Source(make_settings(tmp_path / "d.sqlite3", ping_url=ping))
    notifier = Notifier(source)
    await notifier.start()
    try:
        for status, final in [
            ("running", False),
            ("ok", True),
            ("failed", True),
            ("partial", True),
            ("cancelled", True),
        ]:
            event = RunProgress(run_id=1, flow="eod", trigger="schedule", status=status)
            source.board.publish(event.model_copy(update={"final": final}))
        async with asyncio.timeout(10):
            while len(receiver.pings) < 2:
                await asyncio.sleep(0.02)
    finally:
        await notifier.stop()
    assert receiver.pings == ["/ping/0f9e-uuid?from=finappd"] * 2


async def test_a_failing_notifier_is_logged_never_raised_nor_its_url_shown(
    tmp_path: Path, add_run: AddRun
) -> None:
    """Messages and pings to a port where nothing listens are logged as failed, with no URL."""
    with socket_port() as port:
        settings = make_settings(
            tmp_path / "d.sqlite3",
            urls=[f"json://127.0.0.1:{port}/secret-hook-path"],
            ping_url=f"http://127.0.0.1:{port}/ping/secret-uuid",
            timeout="3s",
        )
    Store(tmp_path / "d.sqlite3").open().close()
    source = Source(settings)
    notifier = Notifier(source)
    with capture_logs() as logs:
        await notifier.start()
        try:
            async with asyncio.timeout(10):
                while notifier.checks == 0:
                    await asyncio.sleep(0.01)
            add_run("failed")
            assert [c.key for c in await notifier.check()] == ["stale:eod"]
            event = RunProgress(run_id=1, flow="eod", trigger="api", status="ok", final=True)
            source.board.publish(event)
            async with asyncio.timeout(20):
                while notifier.failed < 2:
                    await asyncio.sleep(0.05)
        finally:
            await notifier.stop()
    failed = [e for e in logs if e["event"] == "notify.failed"]
    assert {e["what"] for e in failed} == {"stale:eod", "ping"}
    assert "secret" not in repr(logs)


class socket_port:
    """A loopback port with nothing listening on it (bound, then closed, while inside)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        return None


DAEMON_CONFIG = """
[store]
path = "{db}"
[logging]
format = "json"
[api]
listen = ""
[notify]
urls = ["json://{receiver}/hook"]
ping_url = "http://{receiver}/ping/daemon-uuid"
failed_runs = 2
check_every = "1h"
[providers.yahoo]
base_url = "{url}"
retries = 0
rate = "6000/minute"
[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["A", "B"]
every = "2s"
"""


async def test_a_daemon_says_each_change_once_and_pings_after_good_runs(
    tmp_path: Path, receiver: Receiver, sim_server: MakeServer
) -> None:
    """A daemon whose provider is down says `stale` and `failing` once however many runs
    fail; after a reload to a working provider it says both recovered, and pings."""
    sim = await sim_server()
    assert sim.url is not None
    with socket_port() as dead:
        down = f"http://127.0.0.1:{dead}"
    config = tmp_path / "finappd.toml"

    def write(url: str) -> None:
        text = DAEMON_CONFIG.format(db=tmp_path / "d.sqlite3", receiver=receiver.url, url=url)
        config.write_text(text, encoding="utf-8")

    write(down)
    proc = await procs.spawn_finappd(
        "run", "--config", str(config), stdout=asyncio.subprocess.DEVNULL
    )
    try:
        await receiver.wait(2, within=60)
        async with asyncio.timeout(60):  # two more failed runs: nothing more is said
            while len(runs(tmp_path / "d.sqlite3")) < 4:
                await asyncio.sleep(0.1)
        assert len(receiver.messages) == 2
        write(sim.url)
        proc.send_signal(signal.SIGHUP)
        await receiver.wait(4, within=60)
        async with asyncio.timeout(30):
            while not receiver.pings:
                await asyncio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0
    titles = [m["title"] for m in receiver.messages]
    assert sorted(titles[:2]) == ["finappd: failing:eod", "finappd: stale:eod"]
    assert sorted(titles[2:]) == ["finappd: recovered failing:eod", "finappd: recovered stale:eod"]
    good = [status for status in runs(tmp_path / "d.sqlite3") if status == "ok"]
    assert len(receiver.pings) == len(good)
    assert receiver.pings[0] == "/ping/daemon-uuid"


def runs(db: Path) -> list[str]:
    """The status of every finished run, oldest first."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT status FROM runs WHERE status != 'running' ORDER BY id")
        return [row[0] for row in rows]
