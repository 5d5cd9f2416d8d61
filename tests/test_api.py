"""The HTTP API against a real daemon process: health, metrics, status, trigger, events, auth."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from finappd.sim import SimConfig
from tests import procs
from tests.conftest import MakeServer

CONFIG = """
[store]
path = "{db}"
[logging]
format = "json"
{api}
[providers.yahoo]
base_url = "{url}"
max_concurrency = {concurrency}
rate = "6000/minute"
[[flows]]
name = "eod"
provider = "yahoo"
tickers = [{tickers}]
{schedule}
num_workers = 4
"""

#: A schedule that never fires during a test: runs start only when asked for.
NEVER = 'cron = "0 3 1 1 *"'
TOKEN = "s3cret-api-token-0123456789"


@dataclass
class Daemon:
    """A ``finappd run`` child, its log file and where its API listens."""

    proc: procs.Child
    log: Path
    db: Path
    socket: Path | None
    port: int | None

    def lines(self) -> list[str]:
        """Every line the daemon wrote to stdout so far."""
        return self.log.read_text(encoding="utf-8").splitlines()

    def events(self) -> list[dict[str, Any]]:
        """Its log lines, parsed."""
        return [json.loads(line) for line in self.lines()]

    def client(self, token: str | None = None) -> aiohttp.ClientSession:
        """A session to the API (over the socket, or TCP), with ``token`` if given."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        connector = None if self.socket is None else aiohttp.UnixConnector(path=str(self.socket))
        base = f"http://127.0.0.1:{self.port}" if self.port else "http://localhost"
        return aiohttp.ClientSession(
            base,
            connector=connector,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def stop(self) -> str:
        """SIGTERM it; return its stderr once it exited 0."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.proc.communicate(), timeout=30)
        assert self.proc.returncode == 0, err.decode()
        return err.decode()


StartDaemon = Callable[..., Awaitable[Daemon]]


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def start_daemon(tmp_path: Path) -> AsyncIterator[StartDaemon]:
    """Factory of daemons with the API configured as asked; kills any left after the test."""
    children: list[procs.Child] = []

    async def start(
        url: str,
        tickers: int = 3,
        *,
        schedule: str = 'every = "1h"',
        api: str | None = None,
        env: dict[str, str] | None = None,
        concurrency: int = 2,
        wait: bool = True,
    ) -> Daemon:
        sock: Path | None = tmp_path / "api.sock"
        port = None
        if api is None:
            api = f'[api]\nlisten = "unix:{sock}"'
        elif "127.0.0.1" in api:
            port = free_port()
            api = api.format(port=port)
        if "unix:" not in api:
            sock = None
        config = tmp_path / "finappd.toml"
        config.write_text(
            CONFIG.format(
                db=tmp_path / "d.sqlite3",
                api=api,
                url=url,
                concurrency=concurrency,
                tickers=", ".join(f'"T{i:03d}"' for i in range(tickers)),
                schedule=schedule,
            ),
            encoding="utf-8",
        )
        log = tmp_path / "daemon.log"
        with log.open("wb") as out:
            proc = await procs.spawn_finappd(
                "run", "--config", str(config), env=env, stdout=out.fileno()
            )
        children.append(proc)
        daemon = Daemon(proc, log, tmp_path / "d.sqlite3", sock, port)
        if wait:
            await wait_for_event(daemon, "daemon.ready")
        return daemon

    yield start
    for proc in children:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def wait_for_event(daemon: Daemon, event: str, within: float = 60) -> dict[str, Any]:
    """The first log line of ``event``, waiting for it."""
    async with asyncio.timeout(within):
        while True:
            for line in daemon.events():
                if line.get("event") == event:
                    return line
            if daemon.proc.returncode is not None:
                raise AssertionError(f"the daemon exited before logging {event}")
            await asyncio.sleep(0.05)


def runs_table(db: Path) -> list[tuple[Any, ...]]:
    """``(id, flow, trigger, status, tickers_ok, tickers_failed)`` of every run."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(
            'SELECT id, flow, "trigger", status, tickers_ok, tickers_failed FROM runs ORDER BY id'
        ).fetchall()


async def sse(client: aiohttp.ClientSession, run_id: int) -> list[tuple[str, dict[str, Any]]]:
    """Every ``(event, data)`` of the run's event stream, until the server closes it."""
    found: list[tuple[str, dict[str, Any]]] = []
    name = ""
    async with client.get(f"/runs/{run_id}/events") as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                found.append((name, json.loads(line.removeprefix("data: "))))
    return found


async def test_healthz_metrics_and_status_then_503_when_stale(
    sim_server: MakeServer, start_daemon: StartDaemon
) -> None:
    """/healthz is 200 after a good run and 503 naming the flow once it is made stale; /metrics
    parses and its counters match the runs table; /status is `status --json`."""
    sim = await sim_server()
    assert sim.url is not None
    daemon = await start_daemon(sim.url, tickers=3)
    async with daemon.client() as client:
        async with asyncio.timeout(60):
            while True:
                async with client.get("/healthz") as response:
                    body = await response.json()
                    if response.status == 200:
                        break
                    assert response.status == 503
                    assert body["status"] == "stale"
                    assert "eod" in body["flows"]
                await asyncio.sleep(0.1)
        assert body == {"status": "ok"}

        async with client.get("/metrics") as response:
            assert response.status == 200
            text = await response.text()
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        table = runs_table(daemon.db)
        assert [row[3] for row in table] == ["ok"]
        for _id, flow, _trigger, status, ok, failed in table:
            assert samples[("finappd_runs_total", (("flow", flow), ("status", status)))] == 1
            assert samples[("finappd_tickers_total", (("flow", flow), ("outcome", "ok")))] == ok
            assert (
                samples[("finappd_tickers_total", (("flow", flow), ("outcome", "failed")))]
                == failed
            )
        assert samples[("finappd_run_duration_seconds_count", (("flow", "eod"),))] == 1
        assert samples[("finappd_last_good_run_timestamp_seconds", (("flow", "eod"),))] > 0
        assert samples[("finappd_provider_requests_total", (("provider", "yahoo"),))] == 3
        assert samples[("finappd_provider_wait_seconds_count", (("provider", "yahoo"),))] == 3
        circuit = (("provider", "yahoo"), ("state", "closed"))
        assert samples[("finappd_provider_circuit_state", circuit)] == 1

        async with client.get("/status") as response:
            assert response.status == 200
            status = await response.json()
        assert status["healthy"] is True
        assert [f["flow"] for f in status["flows"]] == ["eod"]
        assert status["runs"][0]["status"] == "ok"
        assert status["bars"]["symbols"] == 3

        with sqlite3.connect(daemon.db) as conn:  # another program ages the only good run
            conn.execute("UPDATE runs SET started_at = '2000-01-03T00:00:00+00:00'")
        async with client.get("/healthz") as response:
            assert response.status == 503
            body = await response.json()
        assert body["status"] == "stale"
        assert "before the cutoff" in body["flows"]["eod"]
    await daemon.stop()


async def test_post_starts_one_run_a_second_post_joins_it_and_events_follow_it(
    sim_server: MakeServer, start_daemon: StartDaemon
) -> None:
    """POST starts a run (trigger api); a second POST while it runs answers the same id; the
    event stream sends progress, then the end, and closes; bad requests get JSON 4xx."""
    sim = await sim_server(SimConfig(latency=0.2))
    assert sim.url is not None
    daemon = await start_daemon(sim.url, tickers=12, schedule=NEVER, concurrency=1)
    async with daemon.client() as client:
        async with client.post("/flows/eod/runs") as response:
            assert response.status == 202
            run_id = (await response.json())["run_id"]
        async with client.post("/flows/eod/runs", json={}) as response:
            assert response.status == 202
            assert (await response.json())["run_id"] == run_id
        events = await sse(client, run_id)
        names = [name for name, _ in events]
        assert names[-1] == "end"
        assert names.count("end") == 1
        assert names.count("progress") >= 2
        progress = [data for name, data in events if name == "progress"]
        assert all(p["status"] == "running" and p["run_id"] == run_id for p in progress)
        assert any(0 < p["tickers_ok"] < 12 for p in progress)  # seen mid-run
        end = events[-1][1]
        assert (end["status"], end["tickers_ok"], end["tickers_total"]) == ("ok", 12, 12)

        async with client.get(f"/runs/{run_id}") as response:
            assert response.status == 200
            row = await response.json()
        assert (row["status"], row["trigger"], row["failures"]) == ("ok", "api", {})
        assert runs_table(daemon.db) == [(run_id, "eod", "api", "ok", 12, 0)]
        # The stream of a run that is over: its end at once.
        assert [name for name, _ in await sse(client, run_id)] == ["end"]

        for method, path, body, status in [
            ("POST", "/flows/nope/runs", None, 404),
            ("POST", "/flows/eod/runs", b"{not json", 400),
            ("POST", "/flows/eod/runs", b"[1]", 400),
            ("GET", "/runs/abc", None, 400),
            ("GET", "/runs/999", None, 404),
            ("GET", "/runs/999/events", None, 404),
            ("GET", "/no/such/path", None, 404),
            ("DELETE", "/healthz", None, 405),
        ]:
            async with client.request(method, path, data=body) as response:
                assert response.status == status, (method, path)
                assert response.content_type == "application/json"
                assert "error" in await response.json()
    err = await daemon.stop()
    assert "Traceback" not in err


async def test_tcp_needs_the_token_and_the_token_is_never_logged(
    sim_server: MakeServer, start_daemon: StartDaemon
) -> None:
    """On TCP a missing or wrong token is 401 (health and metrics stay open), the right one
    passes, and no log line ever holds the token."""
    sim = await sim_server()
    assert sim.url is not None
    daemon = await start_daemon(
        sim.url,
        schedule=NEVER,
        api='[api]\nlisten = "127.0.0.1:{port}"',
        env={"FINAPPD_API__TOKEN": TOKEN},
    )
    for token in (None, "wrong", TOKEN[:-1]):
        async with daemon.client(token) as client:
            async with client.get("/status") as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"] == "Bearer"
                assert (await response.json())["error"]
            async with client.post("/flows/eod/runs") as response:
                assert response.status == 401
            async with client.get("/metrics") as response:
                assert response.status == 200
            async with client.get("/healthz") as response:
                assert response.status == 503  # no good run yet: stale, but not refused
    async with daemon.client(TOKEN) as client:
        async with client.post("/flows/eod/runs") as response:
            assert response.status == 202
            run_id = (await response.json())["run_id"]
        assert [name for name, _ in await sse(client, run_id)][-1] == "end"
    err = await daemon.stop()
    unauthorized = [e for e in daemon.events() if e["event"] == "api.unauthorized"]
    assert len(unauthorized) == 6
    assert {e["path"] for e in unauthorized} == {"/status", "/flows/eod/runs"}
    for line in [*daemon.lines(), *err.splitlines()]:
        assert TOKEN not in line
        assert TOKEN[:-1] not in line


async def test_nothing_listens_when_listen_is_empty(
    tmp_path: Path, sim_server: MakeServer, start_daemon: StartDaemon
) -> None:
    """Under systemd's $RUNTIME_DIRECTORY the API's socket is there by default, and with
    ``listen = ""`` there is none (and no TCP port either)."""
    sim = await sim_server()
    assert sim.url is not None
    runtime = tmp_path / "run"
    runtime.mkdir()
    env = {"RUNTIME_DIRECTORY": str(runtime)}
    daemon = await start_daemon(sim.url, schedule=NEVER, api="", env=env)
    listening = await wait_for_event(daemon, "api.listening")
    assert listening["address"] == f"unix:{runtime / 'api.sock'}"
    assert (runtime / "api.sock").is_socket()
    await daemon.stop()
    assert list(runtime.iterdir()) == []  # the socket is removed at exit

    daemon = await start_daemon(sim.url, schedule=NEVER, api='[api]\nlisten = ""', env=env)
    await wait_for_event(daemon, "api.off")
    assert list(runtime.iterdir()) == []
    assert not any(e["event"] == "api.listening" for e in daemon.events())
    await daemon.stop()
