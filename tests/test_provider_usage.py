"""Tests for finappd.providers.usage: effective limits in check-config, today's usage in status."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from finappd.cli import main
from finappd.config import Settings, load_settings
from finappd.providers import PROVIDER_KINDS
from finappd.providers.usage import effective_limits_report, format_usage, usage_report
from finappd.status import print_status
from finappd.store import Store

NOW = datetime(2026, 3, 14, 15, 0, tzinfo=UTC)

CONFIG = """
[store]
path = "{db}"

[providers.yahoo]
max_concurrency = 1

[providers.av]
kind = "alphavantage"
api_key = "not-a-real-key"

[providers.td]
kind = "twelvedata"
api_key = "not-a-real-key"
rates = ["4/minute", "100/day"]
quota_reset_tz = "America/New_York"

[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["AAPL"]
every = "1h"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config file with a default, a keyed and an overridden provider."""
    path = tmp_path / "finappd.toml"
    path.write_text(CONFIG.format(db=tmp_path / "u.sqlite3"))
    return path


def test_effective_limits_merge_declared_defaults_and_config(config: Path) -> None:
    """Each provider shows its class defaults with the config's overrides applied."""
    report = effective_limits_report(load_settings(config))
    assert report["yahoo"]["max_concurrency"] == 1
    assert report["yahoo"]["rates"] == ["1/second"]
    assert report["av"]["daily_quota"] == 25
    assert report["td"]["rates"] == ["4/minute"]
    assert report["td"]["daily_quota"] == 100
    assert report["td"]["quota_reset"] == "00:00 America/New_York"
    assert "opens after 5" in report["td"]["circuit"]


def test_check_config_prints_effective_limits_and_no_key(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config shows providers.X.effective_limits, and never the key."""
    assert main(["--config", str(config), "check-config"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out)
    assert shown["providers"]["av"]["effective_limits"]["daily_quota"] == 25
    assert shown["providers"]["yahoo"]["effective_limits"]["max_concurrency"] == 1
    assert "not-a-real-key" not in out


def test_usage_report_counts_today_in_each_quota_timezone(config: Path) -> None:
    """Today's requests per provider, against its quotas, on the provider's quota day."""
    settings = load_settings(config)
    with Store(settings.store.resolved_path()) as store:
        store.add_usage("av", {"2026-03-14": 7, "2026-03-02": 3})
        store.add_usage("td", {"2026-03-14": 2})
        rows = {r["provider"]: r for r in usage_report(store, settings, NOW)}
    assert rows["av"]["requests"] == 7
    assert rows["av"]["month_requests"] == 10
    assert rows["av"]["daily_quota"] == 25
    assert rows["av"]["resets_at"] == "2026-03-15T04:00:00+00:00"  # AV: US/Eastern midnight
    assert rows["td"]["resets_at"] == "2026-03-15T04:00:00+00:00"
    assert rows["yahoo"]["requests"] == 0
    assert rows["yahoo"]["daily_quota"] is None
    lines = format_usage(list(rows.values()))
    assert any(line.startswith("av") and "today 7/25" in line for line in lines)


def test_status_shows_usage_in_text_and_json(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """finappd status prints each provider's usage; --json has it under 'usage'."""
    settings: Settings = load_settings(config)
    today = datetime.now(ZoneInfo("America/New_York")).date().isoformat()  # AV's quota day
    with Store(settings.store.resolved_path()) as store:
        store.add_usage("av", {today: 4})
    assert print_status(settings, as_json=False) == 0
    text = capsys.readouterr().out
    assert any(line.startswith("usage av") and "today 4/25" in line for line in text.splitlines())
    assert print_status(settings, as_json=True) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["provider"]: r["requests"] for r in data["usage"]}["av"] == 4


README = Path(__file__).resolve().parent.parent / "README.md"


def _limits_section() -> str:
    """The README's 'Provider limits, quotas and fallback' section."""
    text = README.read_text(encoding="utf-8")
    start = text.index("### Provider limits, quotas and fallback")
    return text[start : text.index("\n## ", start)]


def test_readme_limits_table_matches_the_declared_defaults() -> None:
    """Every registered kind has a README row equal to its declared default limits."""
    rows = {}
    for line in _limits_section().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| `"):
            rows[cells[0].strip("`")] = cells[1:]
    assert set(rows) == set(PROVIDER_KINDS)
    for kind, cls in PROVIDER_KINDS.items():
        d = cls.default_limits.describe()
        expected = [
            str(d["max_concurrency"]),
            ", ".join(d["rates"]) or "-",
            str(d["daily_quota"] or "-"),
            str(d["monthly_quota"] or "-"),
            d["quota_reset"].removeprefix("00:00 "),
        ]
        assert rows[kind] == expected, kind


def test_readme_limits_example_config_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's limits example is a valid config (keys from the environment)."""
    [block] = re.findall(r"```toml\n(.*?)```", _limits_section(), flags=re.DOTALL)
    monkeypatch.setenv("FINAPPD_PROVIDERS__AV__API_KEY", "k")
    monkeypatch.setenv("FINAPPD_PROVIDERS__STOOQ__API_KEY", "k")
    path = tmp_path / "finappd.toml"
    path.write_text(block, encoding="utf-8")
    settings = load_settings(path)
    assert settings.flow("eod").fallback == ["stooq", "av"]
    report = effective_limits_report(settings)
    assert report["av"]["daily_quota"] == 25
    assert report["yahoo"]["rates"] == ["1/second", "60/minute"]
