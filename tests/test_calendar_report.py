"""check-config and status name every exchange no calendar knows, with the rule it trades on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from finappd.cli import main
from finappd.config import load_settings
from finappd.status import print_status
from finappd.store import Store

FLOWS = """
[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["AAPL", "MC.PA", "SAP.BE", "FOO.XY"]
cron = "30 22 * * mon-fri"
"""

NO_CALENDAR = {
    "SAP.BE": "XBER: no calendar known: weekdays, whole days in Europe/Berlin",
    "FOO.XY": "UNKNOWN: no calendar known: weekdays, whole days in UTC",
}


def write_config(tmp_path: Path) -> Path:
    """A config of one flow with two tickers no calendar knows."""
    path = tmp_path / "finappd.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "d.sqlite3"}"\n{FLOWS}', encoding="utf-8")
    return path


def test_check_config_lists_exchanges_and_those_without_a_calendar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The effective config shows each flow's tickers by exchange and the uncalendared ones."""
    assert main(["--config", str(write_config(tmp_path)), "check-config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["exchanges"]["eod"] == {
        "by_exchange": {
            "UNKNOWN": ["FOO.XY"],
            "XBER": ["SAP.BE"],
            "XNYS": ["AAPL"],
            "XPAR": ["MC.PA"],
        },
        "no_calendar": NO_CALENDAR,
    }


def test_status_names_the_tickers_without_a_calendar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status (JSON and text) names each ticker whose exchange no calendar knows."""
    settings = load_settings(write_config(tmp_path))
    now = datetime(2026, 3, 9, 12, tzinfo=UTC)
    with Store(tmp_path / "d.sqlite3").open() as store:
        run = store.start_run("eod", "schedule", 4, now)
        store.finish_run(
            run, status="ok", tickers_ok=4, tickers_failed=0, rows_written=4, error=None, now=now
        )
    print_status(settings, as_json=True, now=now)
    [eod] = json.loads(capsys.readouterr().out)["flows"]
    assert eod["no_calendar"] == NO_CALENDAR
    print_status(settings, as_json=False, now=now)
    out = capsys.readouterr().out
    assert "calendar   SAP.BE XBER: no calendar known: weekdays" in out
    assert "calendar   FOO.XY UNKNOWN: no calendar known: weekdays" in out
