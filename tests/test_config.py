"""Configuration: TOML + env + credentials, and one clear error naming the key."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from finappd.config import EX_CONFIG, Rate, find_config_file, load_settings, parse_duration
from finappd.errors import ConfigError
from finappd.validate import check_settings, load_checked

REPO = Path(__file__).resolve().parent.parent

GOOD = """
[providers.yahoo]
max_concurrency = 3
rate = "30/minute"

[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["AAPL", "MSFT", "AAPL"]
cron = "30 22 * * mon-fri"
timezone = "America/New_York"
num_workers = 20
"""


def write(tmp_path: Path, text: str, name: str = "finappd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15m", timedelta(minutes=15)),
        ("30s", timedelta(seconds=30)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("500ms", timedelta(milliseconds=500)),
        (90, timedelta(seconds=90)),
    ],
)
def test_parse_duration(text: str | int, expected: timedelta) -> None:
    """Durations are read from '15m'-style strings or plain seconds."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [
        ("60/minute", 60, 60.0),
        ("5/s", 5, 1.0),
        ("100/hour", 100, 3600.0),
        ("25/day", 25, 86400.0),
        ("8/10s", 8, 10.0),
    ],
)
def test_rate_parsing(text: str, count: int, period: float) -> None:
    """Rates are read from 'N/period' strings."""
    rate = Rate.model_validate(text)
    assert (rate.count, rate.period) == (count, period)


def test_good_config_loads_with_defaults(tmp_path: Path) -> None:
    """A valid file loads; tickers are de-duplicated; the deadline is shorter than the interval."""
    settings = load_settings(write(tmp_path, GOOD))
    flow = settings.flow("eod")
    assert flow.tickers == ["AAPL", "MSFT"]
    assert settings.providers["yahoo"].max_concurrency == 3
    assert flow.deadline is not None
    assert flow.deadline < flow.min_interval()


def test_env_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FINAPPD_* environment variables, nested with __, override the file."""
    monkeypatch.setenv("FINAPPD_PROVIDERS__YAHOO__MAX_CONCURRENCY", "7")
    monkeypatch.setenv("FINAPPD_STORE__PATH", str(tmp_path / "other.sqlite3"))
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.providers["yahoo"].max_concurrency == 7
    assert settings.store.path == tmp_path / "other.sqlite3"
    assert settings.providers["yahoo"].rate == Rate(count=30, period=60.0)


def test_credentials_directory_supplies_masked_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API key file in $CREDENTIALS_DIRECTORY is loaded as a secret and masked in output."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "yahoo_api_key").write_text("sentinel-key-123\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    settings = load_settings(write(tmp_path, GOOD))
    key = settings.providers["yahoo"].api_key
    assert key is not None
    assert key.get_secret_value() == "sentinel-key-123"
    assert "sentinel-key-123" not in json.dumps(settings.masked(), default=str)
    assert "sentinel-key-123" not in repr(settings)


def test_tickers_file_is_read(tmp_path: Path) -> None:
    """tickers_file adds one symbol per line and ignores comments and blank lines."""
    (tmp_path / "t.txt").write_text("# mine\nAAPL\n\nVOD.L  # London\n", encoding="utf-8")
    text = GOOD.replace('tickers = ["AAPL", "MSFT", "AAPL"]', f'tickers_file = "{tmp_path}/t.txt"')
    assert load_settings(write(tmp_path, text)).flow("eod").tickers == ["AAPL", "VOD.L"]


def test_state_directory_anchors_relative_store_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative store path lives under $STATE_DIRECTORY when systemd sets it."""
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/finappd")
    assert str(load_settings(None).store.resolved_path()) == "/var/lib/finappd/finappd.sqlite3"


def test_config_file_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--config wins over $FINAPPD_CONFIG, which wins over $CONFIGURATION_DIRECTORY."""
    confdir = tmp_path / "etc"
    confdir.mkdir()
    write(confdir, GOOD)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FINAPPD_CONFIG", raising=False)
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(confdir))
    assert find_config_file(None) == confdir / "finappd.toml"
    monkeypatch.setenv("FINAPPD_CONFIG", "/x/env.toml")
    assert find_config_file(None) == Path("/x/env.toml")
    assert find_config_file("/x/arg.toml") == Path("/x/arg.toml")


BAD_CONFIGS = [
    ("num_workers = 20", "num_workers = 0", "flows.0.num_workers"),
    ('provider = "yahoo"', 'provider = "nope"', "flows.0.provider"),
    ('cron = "30 22 * * mon-fri"', 'cron = "99 * * * *"', "flows.0.cron"),
    ('timezone = "America/New_York"', 'timezone = "Mars/Olympus"', "flows.0.timezone"),
    ('rate = "30/minute"', 'rate = "lots"', "providers.yahoo.rate"),
    ("max_concurrency = 3", "max_concurrency = -1", "providers.yahoo.max_concurrency"),
    ("max_concurrency = 3", "max_concurrenc = 3", "providers.yahoo.max_concurrenc"),
    ('cron = "30 22 * * mon-fri"', 'cron = "30 22 * * *"\nevery = "5m"', "flows.0"),
    ('tickers = ["AAPL", "MSFT", "AAPL"]', 'tickers_file = "/nonexistent/t.txt"', "flows.0"),
    ('name = "eod"', 'name = "has space"', "flows.0.name"),
    ("[providers.yahoo]", "[providers.yahoo\n", "config"),
    ("[providers.yahoo]", '[providers.yahoo]\nkind = "bloomberg"', "providers.yahoo.kind"),
]


@pytest.mark.parametrize(("old", "new", "key"), BAD_CONFIGS)
def test_bad_config_names_the_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    """Each broken config raises one ConfigError whose key points at the problem."""
    assert old in GOOD
    with pytest.raises(ConfigError) as info:
        load_checked(write(tmp_path, GOOD.replace(old, new, 1)))
    assert info.value.key == key
    assert "\n" not in str(info.value)


def test_duplicate_flow_names_rejected(tmp_path: Path) -> None:
    """Two flows with the same name are a config error naming the second."""
    text = GOOD + GOOD[GOOD.index("[[flows]]") :]
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert info.value.key == "flows.1.name"


def test_deadline_must_be_shorter_than_interval(tmp_path: Path) -> None:
    """A run deadline as long as the interval is refused."""
    text = GOOD.replace('cron = "30 22 * * mon-fri"', 'every = "5m"\ndeadline = "5m"')
    with pytest.raises(ConfigError, match="deadline"):
        load_settings(write(tmp_path, text))


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finappd", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_bad_config_exits_78_with_one_line(tmp_path: Path) -> None:
    """check-config on a broken file exits 78 with one JSON line naming the key, no traceback."""
    path = write(tmp_path, GOOD.replace("num_workers = 20", "num_workers = 0"))
    proc = run_cli("--config", str(path), "check-config", cwd=tmp_path)
    assert proc.returncode == EX_CONFIG
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["key"] == "flows.0.num_workers"
    assert "Traceback" not in proc.stderr


def test_cli_run_without_config_exits_78(tmp_path: Path) -> None:
    """`run` with no config file anywhere exits 78 naming 'config'."""
    proc = run_cli("run", cwd=tmp_path)
    assert proc.returncode == EX_CONFIG
    assert json.loads(proc.stderr)["key"] == "config"


def test_cli_check_config_prints_effective_config(tmp_path: Path) -> None:
    """check-config prints the effective config as JSON with defaults filled in."""
    proc = run_cli("--config", str(write(tmp_path, GOOD)), "check-config", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["providers"]["yahoo"]["max_concurrency"] == 3
    assert data["flows"][0]["num_workers"] == 20


def test_example_config_loads() -> None:
    """The example config shipped in deploy/ is valid."""
    settings = load_settings(REPO / "deploy" / "finappd.example.toml")
    assert [f.name for f in settings.flows] == ["eod"]


FALLBACK = """
[providers.yahoo]
[providers.backup]
kind = "yahoo"
[providers.fx]
kind = "frankfurter"

[[flows]]
name = "eod"
provider = "yahoo"
fallback = {fallback}
tickers = ["AAPL"]
every = "1h"
"""


@pytest.mark.parametrize(
    ("fallback", "key", "problem"),
    [
        ('["nope"]', "flows.0.fallback.0", "'nope' is not a configured provider"),
        ('["backup", "backup"]', "flows.0.fallback.1", "already in this flow's chain"),
        ('["yahoo"]', "flows.0.fallback.0", "already in this flow's chain"),
        ('["fx"]', "flows.0.fallback.0", "provider 'fx' (frankfurter) has no daily_bars"),
    ],
)
def test_fallback_must_be_configured_distinct_and_capable(
    tmp_path: Path, fallback: str, key: str, problem: str
) -> None:
    """Each fallback names a configured provider, once, that can serve the flow's kind."""
    with pytest.raises(ConfigError) as info:
        load_checked(write(tmp_path, FALLBACK.format(fallback=fallback)))
    assert info.value.key == key
    assert problem in info.value.problem


def test_fallback_chain_loads_in_order(tmp_path: Path) -> None:
    """A valid fallback list is kept in its order."""
    settings = load_settings(write(tmp_path, FALLBACK.format(fallback='["backup"]')))
    assert settings.flow("eod").fallback == ["backup"]


def test_primary_without_the_flow_capability_is_refused(tmp_path: Path) -> None:
    """A daily_bars flow on an FX-only provider is refused, naming flows.0.provider."""
    text = FALLBACK.format(fallback="[]").replace('provider = "yahoo"', 'provider = "fx"')
    with pytest.raises(ConfigError) as info:
        load_checked(write(tmp_path, text))
    assert info.value.key == "flows.0.provider"


def test_config_alone_knows_no_provider_kinds(tmp_path: Path) -> None:
    """The loader leaves kinds to the check: an unknown one loads, then check_settings names it."""
    text = GOOD.replace("[providers.yahoo]", '[providers.yahoo]\nkind = "bloomberg"', 1)
    settings = load_settings(write(tmp_path, text))
    assert settings.providers["yahoo"].kind == "bloomberg"
    with pytest.raises(ConfigError) as info:
        check_settings(settings)
    assert info.value.key == "providers.yahoo.kind"
    assert "bloomberg" in info.value.problem
