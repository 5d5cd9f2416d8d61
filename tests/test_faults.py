"""Provider faults injected by the simulator: each ticker ends stored or recorded, runs bounded."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from finappd.cli import main
from finappd.config import Settings
from finappd.runtime import Runtime
from finappd.sim import SimConfig
from finappd.sim.faults import FAULT_KINDS, Fault, FaultPlan
from tests.conftest import MakeServer, one_flow

#: Faults a ticker cannot recover from within its retries, and the error kinds they may end as.
ENDS_AS: dict[str, set[str]] = {
    "http_500": {"server_error"},
    "http_502": {"server_error"},
    "http_503": {"server_error"},
    "html_error": {"server_error"},
    "hang": {"timeout"},
    "reset": {"connection", "error"},
    "429_text": {"rate_limited"},
    "429_html": {"rate_limited"},
    "truncated_json": {"bad_response"},
    "malformed_json": {"bad_response"},
    "wrong_shape": {"bad_response"},
    "empty_body": {"bad_response"},
    "html_page": {"bad_response"},
}


def settings_for(tmp_path: Path, url: str, tickers: list[str], **flow: Any) -> Settings:
    """One Yahoo flow against ``url`` with short timeouts, fast retries and no circuit breaker."""
    provider: dict[str, Any] = {
        "base_url": url,
        "max_concurrency": 8,
        "rate": "100000/minute",
        "connect_timeout": "300ms",
        "read_timeout": "300ms",
        "retries": 2,
        "backoff": "1ms",
        "backoff_max": "20ms",
        "circuit_threshold": 1000,
    }
    provider.update(flow.pop("provider", {}))
    flow = {"num_workers": 8, **flow}
    return one_flow(tmp_path / "faults.sqlite3", "yahoo", provider, tickers, **flow)


def outcome(db: Path) -> tuple[set[str], dict[str, tuple[str, str]], list[tuple[Any, ...]]]:
    """Symbols with bars, ``{symbol: (kind, message)}`` of fetch_errors, and the runs rows."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        stored = {r[0] for r in conn.execute("SELECT DISTINCT symbol FROM bars")}
        errors = {
            r[0]: (r[1], r[2])
            for r in conn.execute("SELECT symbol, kind, message FROM fetch_errors")
        }
        runs = conn.execute("SELECT status, tickers_ok, tickers_failed FROM runs").fetchall()
    return stored, errors, runs


async def fetch_raw(url: str, symbol: str, timeout_s: float = 5.0) -> tuple[int, str, str, bytes]:
    """GET one chart from the simulator: status, content type, Retry-After and body."""
    query = "?period1=1700000000&period2=1702000000&interval=1d"
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{url}/v8/finance/chart/{symbol}{query}") as resp,
    ):
        body = await resp.read()
        return resp.status, resp.content_type, resp.headers.get("Retry-After", ""), body


def is_json(body: bytes) -> bool:
    """Whether ``body`` parses as JSON."""
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("kind", "status", "check"),
    [
        ("http_500", 500, lambda body: not is_json(body)),
        ("http_502", 502, lambda body: not is_json(body)),
        ("http_503", 503, lambda body: not is_json(body)),
        ("html_error", 502, lambda body: b"<html>" in body),
        ("429_text", 429, lambda body: body == b"Too Many Requests"),
        ("429_html", 429, lambda body: b"<html>" in body),
        ("truncated_json", 200, lambda body: body.startswith(b'{"chart"') and not is_json(body)),
        ("malformed_json", 200, lambda body: not is_json(body)),
        ("wrong_shape", 200, lambda body: json.loads(body)["chart"]["result"][0]["timestamp"]),
        ("empty_body", 200, lambda body: body == b""),
        ("html_page", 200, lambda body: b"Will be right back" in body),
        ("bad_data", 200, lambda body: b"NaN" in body),
    ],
)
async def test_each_answer_fault_arrives_as_documented(
    sim_server: MakeServer, kind: str, status: int, check: Any
) -> None:
    """Each fault kind that answers sends its documented status and body, never Retry-After."""
    plan = FaultPlan(by_symbol={"AAPL": Fault(kind)})
    sim = await sim_server(SimConfig(faults=plan))
    assert sim.url is not None
    got_status, _, retry_after, body = await fetch_raw(sim.url, "AAPL")
    assert (got_status, retry_after) == (status, "")
    assert check(body)
    assert plan.injected == {kind: 1}
    assert (await fetch_raw(sim.url, "MSFT"))[0] == 200


async def test_hang_and_reset_give_no_answer(sim_server: MakeServer) -> None:
    """A hang outlasts the client's timeout and a reset drops the connection without a reply."""
    plan = FaultPlan(by_symbol={"SLOW": Fault("hang"), "CUT": Fault("reset")}, hang_seconds=30)
    sim = await sim_server(SimConfig(faults=plan))
    assert sim.url is not None
    with pytest.raises(TimeoutError):
        await fetch_raw(sim.url, "SLOW", timeout_s=0.2)
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch_raw(sim.url, "CUT")


async def test_fault_for_the_first_requests_only_then_recovers(sim_server: MakeServer) -> None:
    """A fault with times=2 hits the first two requests of its symbol; the third is served."""
    sim = await sim_server(SimConfig(faults=FaultPlan(by_symbol={"AAPL": Fault("http_503", 2)})))
    assert sim.url is not None
    statuses = [(await fetch_raw(sim.url, "AAPL"))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_random_faults_depend_on_seed_symbol_and_attempt_only() -> None:
    """The random choice ignores the order requests arrive in and changes with the seed."""
    symbols = [f"S{i}" for i in range(200)] * 2

    def kinds_by_symbol(plan: FaultPlan, order: list[str]) -> dict[str, list[str | None]]:
        seen: dict[str, list[str | None]] = {}
        for symbol in order:
            seen.setdefault(symbol, []).append(plan.choose(symbol))
        return seen

    forward = kinds_by_symbol(FaultPlan(rate=0.3, seed=7), symbols)
    assert forward == kinds_by_symbol(FaultPlan(rate=0.3, seed=7), symbols[::-1])
    chosen = [kind for kinds in forward.values() for kind in kinds]
    hits = sum(kind is not None for kind in chosen)
    assert 0.2 * len(symbols) < hits < 0.4 * len(symbols)
    assert "bad_data" not in set(chosen)
    assert kinds_by_symbol(FaultPlan(rate=0.3, seed=8), symbols) != forward
    assert FaultPlan(rate=1.0, kinds=("reset",)).choose("X") == "reset"
    assert FaultPlan(rate=0.0).choose("X") is None


def test_plan_from_json_and_validation() -> None:
    """A plan read from JSON names its faults; an unknown kind or rate is refused."""
    plan = FaultPlan.from_json(
        {"by_symbol": {"A": "reset", "B": {"kind": "hang", "times": 1}}, "rate": 0.5, "seed": 3}
    )
    assert plan.by_symbol == {"A": Fault("reset"), "B": Fault("hang", 1)}
    assert (plan.rate, plan.seed) == (0.5, 3)
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultPlan.from_json({"by_symbol": {"A": "explode"}})
    with pytest.raises(ValueError, match="rate"):
        FaultPlan(rate=2.0)


async def test_faults_can_be_set_on_a_running_simulator(sim_server: MakeServer) -> None:
    """POST /__sim/config with "faults" injects them; a bad plan is refused with 400."""
    sim = await sim_server()
    assert sim.url is not None
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{sim.url}/__sim/config", json={"faults": {"by_symbol": {"AAPL": "http_500"}}}
        ) as resp:
            assert resp.status == 200
        assert (await fetch_raw(sim.url, "AAPL"))[0] == 500
        async with session.post(
            f"{sim.url}/__sim/config", json={"faults": {"by_symbol": {"AAPL": "nope"}}}
        ) as resp:
            assert resp.status == 400
        async with session.post(f"{sim.url}/__sim/config", json={"faults": None}) as resp:
            assert resp.status == 200
    assert (await fetch_raw(sim.url, "AAPL"))[0] == 200


async def test_every_fault_ends_stored_or_recorded_and_the_run_is_partial(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """One ticker per fault kind, some recovering after one fault, many healthy: every ticker
    is stored or recorded with a reason, the run is partial and ends well before its deadline."""
    always = {f"F_{kind.upper()}": Fault(kind) for kind in FAULT_KINDS}
    once = {f"O_{kind.upper()}": Fault(kind, times=1) for kind in ENDS_AS}
    healthy = [f"H{i:02d}" for i in range(30)]
    plan = FaultPlan(by_symbol={**always, **once}, hang_seconds=30)
    sim = await sim_server(SimConfig(faults=plan))
    assert sim.url is not None
    tickers = [*always, *once, *healthy]
    settings = settings_for(tmp_path, sim.url, tickers, deadline="40s")
    started = time.monotonic()
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
    elapsed = time.monotonic() - started
    stored, errors, runs = outcome(tmp_path / "faults.sqlite3")
    assert stored | set(errors) == set(tickers)
    assert not stored & set(errors)
    for kind, kinds in ENDS_AS.items():
        symbol = f"F_{kind.upper()}"
        assert symbol in errors, symbol
        assert errors[symbol][0] in kinds, (symbol, errors[symbol])
        assert symbol in errors[symbol][1] or "/chart/" in errors[symbol][1]
    assert "F_BAD_DATA" in stored  # its good rows landed
    assert set(once) <= stored  # one fault, then a retry that worked
    assert set(healthy) <= stored
    assert runs == [("partial", len(stored), len(errors))]
    assert (summary.status, summary.tickers_failed) == ("partial", len(ENDS_AS))
    assert elapsed < 40


async def test_random_faults_never_leave_a_ticker_unaccounted(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """Seeded random faults on half the requests: each ticker is stored or recorded, never ok."""
    plan = FaultPlan(rate=0.5, seed=11, hang_seconds=30)
    sim = await sim_server(SimConfig(faults=plan))
    assert sim.url is not None
    tickers = [f"R{i:03d}" for i in range(150)]
    settings = settings_for(tmp_path, sim.url, tickers, provider={"retries": 1})
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
    stored, errors, runs = outcome(tmp_path / "faults.sqlite3")
    assert stored | set(errors) == set(tickers)
    assert not stored & set(errors)
    assert errors, "half the requests faulted with one retry: some tickers must fail"
    assert all(kind and message for kind, message in errors.values())
    assert runs == [("partial", len(stored), len(errors))]
    assert summary.status == "partial"
    assert set(plan.injected) >= {"reset", "hang", "http_500", "empty_body"}


async def test_provider_down_for_the_whole_run_fails_every_ticker_quickly(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """With the provider's port closed, every ticker is recorded as a connection failure and
    the run is failed, well within its deadline."""
    sim = await sim_server()
    url = sim.url
    assert url is not None
    await sim.stop()
    tickers = [f"D{i:02d}" for i in range(20)]
    started = time.monotonic()
    # A refused connect is immediate: a long connect timeout keeps a loaded machine's slow
    # loop from turning it into a timeout.
    settings = settings_for(
        tmp_path, url, tickers, deadline="30s", provider={"connect_timeout": "5s"}
    )
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
    stored, errors, runs = outcome(tmp_path / "faults.sqlite3")
    assert stored == set()
    assert set(errors) == set(tickers)
    assert {kind for kind, _ in errors.values()} <= ENDS_AS["reset"] | {"unavailable"}
    assert runs == [("failed", 0, len(tickers))]
    assert summary.status == "failed"
    assert time.monotonic() - started < 30


async def test_hung_provider_is_cut_off_by_the_run_deadline(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A provider that never answers, with timeouts longer than the run's deadline: the run
    ends at its deadline, failed, with every ticker recorded."""
    plan = FaultPlan(rate=1.0, kinds=("hang",), hang_seconds=60)
    sim = await sim_server(SimConfig(faults=plan))
    assert sim.url is not None
    tickers = [f"H{i:02d}" for i in range(30)]
    settings = settings_for(
        tmp_path,
        sim.url,
        tickers,
        deadline="1s",
        provider={"read_timeout": "60s", "connect_timeout": "60s"},
    )
    started = time.monotonic()
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
    elapsed = time.monotonic() - started
    stored, errors, runs = outcome(tmp_path / "faults.sqlite3")
    assert elapsed < 1 + 10  # the deadline, plus recording what was left on a slow machine
    assert stored == set()
    assert set(errors) == set(tickers)
    assert {kind for kind, _ in errors.values()} == {"deadline"}
    assert runs == [("failed", 0, len(tickers))]
    assert "deadline" in (summary.error or "")


CLI_CONFIG = """
[store]
path = "{db}"
[logging]
format = "json"
[providers.yahoo]
base_url = "{url}"
rate = "100000/minute"
connect_timeout = "300ms"
read_timeout = "300ms"
retries = 1
backoff = "1ms"
backoff_max = "10ms"
circuit_threshold = 1000
[[flows]]
name = "eod"
provider = "yahoo"
tickers = [{tickers}]
every = "1h"
"""


@pytest.mark.parametrize(("faulty", "exit_code", "status"), [(2, 3, "partial"), (6, 1, "failed")])
async def test_run_once_exits_by_run_status(
    tmp_path: Path,
    sim_server: MakeServer,
    capsys: pytest.CaptureFixture[str],
    faulty: int,
    exit_code: int,
    status: str,
) -> None:
    """`finappd run-once` against a faulty provider exits 3 when partial, 1 when failed
    (through ``cli.main`` in process; test_crash and test_readers run it as a process)."""
    tickers = [f"P{i}" for i in range(6)]
    plan = FaultPlan(by_symbol={t: Fault("http_503") for t in tickers[:faulty]})
    sim = await sim_server(SimConfig(faults=plan))
    config = tmp_path / "finappd.toml"
    config.write_text(
        CLI_CONFIG.format(
            db=tmp_path / "cli.sqlite3", url=sim.url, tickers=", ".join(f'"{t}"' for t in tickers)
        ),
        encoding="utf-8",
    )
    # main() runs its own event loop: in a thread, beside this test's loop serving the sim.
    returncode = await asyncio.to_thread(main, ["--config", str(config), "run-once", "eod"])
    out, err = capsys.readouterr()
    assert returncode == exit_code, err
    summary = json.loads(out.splitlines()[-1])
    assert (summary["status"], summary["tickers_failed"]) == (status, faulty)
    assert summary["failures"] == {"server_error": faulty}


async def test_a_bug_met_by_one_ticker_fails_only_that_ticker(
    tmp_path: Path, sim_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fetch raising an unexpected exception for one ticker records it as crashed, with the
    exception, and every other ticker still lands."""
    from finappd.flows import build_fetch as original

    def build_fetch(*args: Any, **kwargs: Any) -> Any:
        fetch = original(*args, **kwargs)

        async def buggy(symbol: str) -> Any:
            if symbol == "BOOM":
                raise KeyError("surprise")
            return await fetch(symbol)

        return buggy

    monkeypatch.setattr("finappd.runtime.build_fetch", build_fetch)
    sim = await sim_server()
    assert sim.url is not None
    tickers = ["A1", "BOOM", "A2", "A3"]
    async with Runtime(settings_for(tmp_path, sim.url, tickers)) as runtime:
        summary = await runtime.run_flow("eod", "manual")
    stored, errors, runs = outcome(tmp_path / "faults.sqlite3")
    assert stored == {"A1", "A2", "A3"}
    assert errors == {"BOOM": ("crashed", "KeyError: 'surprise'")}
    assert runs == [("partial", 3, 1)]
    assert summary.failures == {"crashed": 1}
