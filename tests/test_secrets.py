"""The sentinel-key test: an API key never reaches a log line, the SQLite file or an error text.

Runs for every registered provider kind that takes a key (``PROVIDER_KINDS``), so each
new provider is covered when it registers: a flow against the simulator with faults,
rate-limit answers and an open circuit, then every error path over aioresponses with
bodies that echo the request (URL and headers, key included), and ``check-config``.
"""

from __future__ import annotations

import importlib
import io
import re
import traceback
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult

from finappd.cli import main
from finappd.config import ProviderSettings
from finappd.errors import ProviderError
from finappd.logging import configure_logging
from finappd.providers import PROVIDER_KINDS, make_session
from finappd.providers.base import BaseProvider, Capability
from finappd.runtime import Runtime
from finappd.sim import SimConfig
from finappd.sim.faults import FAULT_KINDS, FaultPlan
from tests.conftest import MakeServer, one_flow
from tests.test_provider_support import mock_http

SENTINEL = "SENTINEL-KEY-3f9a"
ANY_URL = re.compile(r"^https?://.*$")


def _takes_key(kind: str) -> bool:
    """Whether provider ``kind`` sends a configured key (in a header or in the URL)."""
    cls = PROVIDER_KINDS[kind]
    if cls.requires_key:
        return True
    # No request is made: the session is never touched.
    probe = cls(kind, ProviderSettings.model_validate({"api_key": SENTINEL}), session=None)  # type: ignore[arg-type]
    sent = {**probe.auth_headers(), **probe.auth_params()}
    return any(SENTINEL in value for value in sent.values())


KEYED = sorted(kind for kind in PROVIDER_KINDS if _takes_key(kind))
#: Tickers each kind understands; an unknown kind gets stock tickers.
TICKERS: dict[str, list[str]] = {"coingecko": ["BTC-USD", "ETH-USD", "ZZZNOPE-USD"]}
STOCKS = ["AAPL", "MSFT", "BRK-B", "ZZZNOPE", "T001", "T002", "T003", "T004"]


def sim_prefix(kind: str) -> str:
    """The path prefix under which the simulator serves ``kind`` (its module's PREFIX)."""
    try:
        module = importlib.import_module(f"finappd.sim.{kind}")
    except ModuleNotFoundError:
        return ""
    prefix = getattr(module, "PREFIX", "")
    return prefix if isinstance(prefix, str) else ""


def everything_about(exc: BaseException) -> str:
    """An exception's text, repr, and full traceback with every chained cause."""
    return f"{exc}\n{exc!r}\n" + "".join(traceback.format_exception(exc))


@pytest.fixture
def log_output() -> io.StringIO:
    """All log output (structlog and stdlib, debug and up) as JSON lines in a buffer."""
    buffer = io.StringIO()
    configure_logging("debug", "json", stream=buffer)
    return buffer


def db_bytes(directory: Path) -> bytes:
    """The bytes of the store's files: the database, its -wal and -shm."""
    return b"".join(p.read_bytes() for p in sorted(directory.glob("s.sqlite3*")))


def test_every_keyed_provider_is_covered() -> None:
    """The keyed kinds the issue names are all registered and found by this test."""
    expected = {"alphavantage", "finnhub", "polygon", "stooq", "tiingo", "twelvedata"}
    assert expected <= set(KEYED)


@pytest.mark.parametrize("kind", KEYED)
async def test_key_never_leaks_from_a_faulty_flow(
    kind: str, tmp_path: Path, sim_server: MakeServer, log_output: io.StringIO
) -> None:
    """A flow through faults, rate limits and an open circuit leaves no trace of the key."""
    faults = FaultPlan(
        rate=0.6,
        kinds=tuple(k for k in FAULT_KINDS if k != "bad_data"),
        seed=7,
        hang_seconds=1.0,
    )
    sim = await sim_server(SimConfig(faults=faults, provider_limits={kind: (3, 1.0)}))
    assert sim.url is not None
    options = {
        "base_url": f"{sim.url}{sim_prefix(kind)}",
        "api_key": SENTINEL,
        "rates": [],
        "max_concurrency": 3,
        "connect_timeout": "200ms",
        "read_timeout": "200ms",
        "retries": 2,
        "backoff": "1ms",
        "backoff_max": "100ms",
        "circuit_threshold": 4,
        "circuit_cooldown": "100ms",
    }
    tickers = TICKERS.get(kind, STOCKS)
    settings = one_flow(tmp_path / "s.sqlite3", kind, options, tickers, num_workers=4)
    stored = b""
    async with Runtime(settings) as runtime:
        summary = await runtime.run_flow("eod", "manual")
        stored += db_bytes(tmp_path)  # with the -wal not yet checkpointed
    stored += db_bytes(tmp_path)
    assert sim.stats.requests > 0
    assert summary.tickers_total == len(TICKERS.get(kind, STOCKS))
    assert SENTINEL.encode() not in stored
    assert SENTINEL not in log_output.getvalue()
    assert SENTINEL not in str(summary.as_dict())
    assert "provider.metrics" in log_output.getvalue()


def _echo(status: int, content_type: str = "text/plain") -> Any:
    """An aioresponses callback answering ``status`` with the request echoed in the body."""

    def answer(url: Any, **kwargs: Any) -> CallbackResult:
        headers = kwargs.get("headers") or {}
        body = f"error for {url} with headers {dict(headers)} and {url.query_string}"
        return CallbackResult(status=status, body=body, content_type=content_type)

    return answer


ERROR_PATHS: list[tuple[str, dict[str, Any]]] = [
    ("401", {"callback": _echo(401)}),
    ("403", {"callback": _echo(403)}),
    ("404", {"callback": _echo(404)}),
    ("429", {"callback": _echo(429)}),
    ("500", {"callback": _echo(500)}),
    ("200-text", {"callback": _echo(200)}),
    ("200-json", {"callback": _echo(200, "application/json")}),
    ("200-html", {"callback": _echo(200, "text/html")}),
    ("timeout", {"exception": TimeoutError()}),
    ("connection", {"exception": aiohttp.ClientConnectionError("refused by host")}),
    ("payload", {"exception": aiohttp.ClientPayloadError("truncated")}),
]


@pytest.mark.parametrize("kind", KEYED)
@pytest.mark.parametrize(("path", "mock"), ERROR_PATHS, ids=[p for p, _ in ERROR_PATHS])
async def test_key_never_leaks_from_an_error_path(
    kind: str, path: str, mock: dict[str, Any], log_output: io.StringIO
) -> None:
    """401/403/404/429/5xx, garbage and echoing bodies, timeouts: no error text holds the key."""
    session = make_session()
    settings = ProviderSettings.model_validate(
        {"api_key": SENTINEL, "rates": [], "retries": 1, "backoff": "1ms", "backoff_max": "50ms"}
    )
    provider: BaseProvider = PROVIDER_KINDS[kind](kind, settings, session)
    texts: list[str] = []
    try:
        with mock_http() as mocked:
            mocked.get(ANY_URL, repeat=True, **mock)
            for call in _calls(provider):
                try:
                    result = await call
                except ProviderError as exc:
                    texts.append(everything_about(exc))
                else:
                    texts.append(repr(result))
    finally:
        await session.close()
    assert texts
    assert not [t for t in texts if SENTINEL in t]
    assert SENTINEL not in log_output.getvalue()
    assert SENTINEL not in repr(provider)


def _calls(provider: BaseProvider) -> list[Any]:
    """One call of each capability the provider declares (twice for bars: after a refusal)."""
    start, end = date(2024, 3, 4), date(2024, 3, 8)
    symbol = "BTC-USD" if Capability.CRYPTO in provider.capabilities else "AAPL"
    calls: list[Any] = []
    caps = provider.capabilities
    if Capability.DAILY_BARS in caps:
        calls += [provider.daily_bars(symbol, start, end), provider.daily_bars(symbol, start, end)]
    if Capability.QUOTE in caps:
        calls.append(provider.quote(symbol))
    if Capability.ACTIONS in caps:
        calls.append(provider.actions(symbol, start, end))
    if Capability.FX in caps:
        calls.append(provider.fx_rates("EUR", ["USD"], start, end))
    return calls


def test_check_config_never_prints_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config with every keyed provider configured shows no key, only a mask."""
    lines = [f'[store]\npath = "{tmp_path / "c.sqlite3"}"']
    for kind in KEYED:
        lines.append(f'[providers.{kind}]\napi_key = "{SENTINEL}"')
    config = tmp_path / "finappd.toml"
    config.write_text("\n".join(lines) + "\n")
    assert main(["--config", str(config), "check-config"]) == 0
    captured = capsys.readouterr()
    assert SENTINEL not in captured.out + captured.err
    assert "**********" in captured.out
