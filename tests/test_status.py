"""`finappd status`: next fire, staleness cutoffs, failure streaks, --check, and STATUS=."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from finappd.cli import main
from finappd.config import FlowSettings, Settings, load_settings
from finappd.scheduler import Daemon
from finappd.status import (
    EXIT_STALE,
    good_run_cutoff,
    next_fire,
    previous_fires,
    print_status,
    status_line,
)
from finappd.store import Store

NY = ZoneInfo("America/New_York")


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A New York wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=NY)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC time."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def flow(
    schedule: dict[str, str], deadline: str = "30m", tz: str = "America/New_York"
) -> FlowSettings:
    """A flow with the given ``cron`` or ``every`` and deadline."""
    return FlowSettings.model_validate(
        {
            "name": "eod",
            "provider": "yahoo",
            "tickers": ["AAPL"],
            "timezone": tz,
            "deadline": deadline,
            **schedule,
        }
    )


WEEKDAYS = {"cron": "30 22 * * mon-fri"}


@pytest.mark.parametrize(
    ("schedule", "before", "fires"),
    [
        # Monday morning: the last two weekday fires are Thursday and Friday.
        (WEEKDAYS, ny(2026, 3, 9, 8), [ny(2026, 3, 5, 22, 30), ny(2026, 3, 6, 22, 30)]),
        # A fire exactly at ``before`` counts.
        (WEEKDAYS, ny(2026, 3, 10, 22, 30), [ny(2026, 3, 9, 22, 30), ny(2026, 3, 10, 22, 30)]),
        # Across the spring DST change the wall clock stays at 22:30, UTC moves an hour.
        (
            {"cron": "30 22 * * *"},
            utc(2026, 3, 9, 2, 30),
            [utc(2026, 3, 8, 3, 30), utc(2026, 3, 9, 2, 30)],
        ),
        # Monthly on the 1st: the search window grows until it finds two fires.
        (
            {"cron": "0 6 1 * *"},
            ny(2026, 3, 15),
            [ny(2026, 2, 1, 6), ny(2026, 3, 1, 6)],
        ),
        # Month-end: a day-31 cron skips February.
        (
            {"cron": "0 18 31 * *"},
            ny(2026, 3, 2),
            [ny(2025, 12, 31, 18), ny(2026, 1, 31, 18)],
        ),
    ],
)
def test_previous_fires(schedule: dict[str, str], before: datetime, fires: list[datetime]) -> None:
    """The two newest fire times at or before a moment, in the flow's timezone rules."""
    assert previous_fires(flow(schedule), before) == fires


@pytest.mark.parametrize(
    ("schedule", "deadline", "now", "cutoff"),
    [
        # Monday 08:00: Friday's run may have failed; Thursday's is the cutoff.
        (WEEKDAYS, "30m", ny(2026, 3, 9, 8), ny(2026, 3, 5, 22, 30)),
        # Monday 22:45: Monday's run may still be running (deadline 30 m): Thursday still.
        (WEEKDAYS, "30m", ny(2026, 3, 9, 22, 45), ny(2026, 3, 5, 22, 30)),
        # Monday 23:05: Monday's run is over; now Friday is the cutoff.
        (WEEKDAYS, "30m", ny(2026, 3, 9, 23, 5), ny(2026, 3, 6, 22, 30)),
        # An interval flow: two intervals and a deadline.
        ({"every": "15m"}, "5m", utc(2026, 3, 9, 12), utc(2026, 3, 9, 11, 25)),
    ],
)
def test_good_run_cutoff_allows_one_missed_run(
    schedule: dict[str, str], deadline: str, now: datetime, cutoff: datetime
) -> None:
    """The default cutoff tolerates one failed or missed run, never weekends."""
    assert good_run_cutoff(flow(schedule, deadline), now) == cutoff


def test_max_age_replaces_the_schedule_cutoff() -> None:
    """--max-age makes the cutoff a plain age."""
    now = utc(2026, 3, 9, 12)
    assert good_run_cutoff(flow(WEEKDAYS), now, timedelta(hours=26)) == utc(2026, 3, 8, 10)


def test_leap_day_cron_looks_back_eight_years() -> None:
    """A leap-day cron's cutoff is the leap day before the last one."""
    cutoff = good_run_cutoff(flow({"cron": "0 0 29 2 *"}, "1h"), utc(2026, 3, 9))
    assert cutoff == ny(2020, 2, 29)


@pytest.mark.parametrize(
    ("schedule", "last", "now", "expected"),
    [
        (WEEKDAYS, None, ny(2026, 3, 6, 23), ny(2026, 3, 9, 22, 30)),
        ({"every": "1h"}, utc(2026, 3, 9, 10), utc(2026, 3, 9, 10, 30), utc(2026, 3, 9, 11)),
        ({"every": "1h"}, utc(2026, 3, 9, 10), utc(2026, 3, 9, 12, 30), utc(2026, 3, 9, 13)),
        ({"every": "1h"}, None, utc(2026, 3, 9, 10), None),
    ],
)
def test_next_fire(
    schedule: dict[str, str], last: datetime | None, now: datetime, expected: datetime | None
) -> None:
    """Cron flows fire on the trigger; interval flows one interval after the last start."""
    assert next_fire(flow(schedule, "5m"), now, last) == expected


def settings_for(tmp_path: Path, flows: str) -> Settings:
    """Settings with a store in ``tmp_path`` and the given ``[[flows]]`` TOML."""
    path = tmp_path / "finappd.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "d.sqlite3"}"\n{flows}', encoding="utf-8")
    return load_settings(path)


EOD = """
[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["AAPL", "MSFT", "FOO"]
cron = "30 22 * * mon-fri"
timezone = "America/New_York"
deadline = "30m"
"""


def record_run(
    store: Store, started: datetime, failed: dict[str, str], status: str | None = None
) -> int:
    """Record a finished eod run over AAPL, MSFT, FOO in which ``failed`` symbols failed."""
    run_id = store.start_run("eod", "schedule", 3, started)
    for symbol, kind in failed.items():
        store.record_error(run_id, symbol, "yahoo", kind, f"{symbol} {kind}", started)
    ok = 3 - len(failed)
    store.finish_run(
        run_id,
        status=status or ("ok" if not failed else "partial" if ok else "failed"),
        tickers_ok=ok,
        tickers_failed=len(failed),
        rows_written=ok * 10,
        error=None,
        now=started + timedelta(minutes=1),
    )
    return run_id


@pytest.fixture
def eod_store(tmp_path: Path) -> Iterator[Store]:
    """A store with four weekday eod runs: FOO fails in the last three, MSFT once."""
    store = Store(tmp_path / "d.sqlite3").open()
    record_run(store, ny(2026, 3, 3, 22, 30), {})
    record_run(store, ny(2026, 3, 4, 22, 30), {"FOO": "not_found", "MSFT": "timeout"})
    record_run(store, ny(2026, 3, 5, 22, 30), {"FOO": "not_found", "MSFT": "cancelled"})
    record_run(store, ny(2026, 3, 6, 22, 30), {"FOO": "not_found"})
    yield store
    store.close()


def test_failure_streaks_count_runs_in_a_row(eod_store: Store) -> None:
    """A symbol's streak counts back from the newest run; run-level kinds do not count."""
    streaks = eod_store.failure_streaks("eod")
    assert streaks == [("FOO", 3, "not_found", "FOO not_found")]


def test_status_json_reports_each_flow(
    tmp_path: Path, eod_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """The JSON status has the last and last good run, next fire, bars and repeated failures."""
    settings = settings_for(tmp_path, EOD)
    code = print_status(settings, as_json=True, check=True, now=ny(2026, 3, 9, 8))
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["healthy"] is True
    [eod] = data["flows"]
    assert eod["last_run"]["status"] == "partial"
    assert eod["last_good"]["id"] == eod["last_run"]["id"]
    assert eod["next_fire"] == "2026-03-10T02:30:00Z"
    assert eod["failing"] == [
        {"symbol": "FOO", "runs_in_a_row": 3, "kind": "not_found", "message": "FOO not_found"}
    ]
    assert data["providers"][0]["provider"] == "yahoo"
    assert data["providers"][0]["flows"] == ["eod"]
    assert len(data["runs"]) == 4


def test_check_fails_after_two_missed_runs(
    tmp_path: Path, eod_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """By Tuesday night, with Monday's and Tuesday's runs missing, --check exits 2 and says why."""
    settings = settings_for(tmp_path, EOD)
    code = print_status(settings, as_json=False, check=True, now=ny(2026, 3, 10, 23, 5))
    out = capsys.readouterr().out
    assert code == EXIT_STALE
    assert "eod: STALE" in out
    assert "before the cutoff 2026-03-10T02:30:00Z" in out
    assert "FOO (not_found, 3 runs)" in out


def test_check_counts_only_good_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A flow whose runs all failed has no good run: --check exits 2."""
    settings = settings_for(tmp_path, EOD)
    with Store(tmp_path / "d.sqlite3").open() as store:
        record_run(store, ny(2026, 3, 6, 22, 30), dict.fromkeys(["AAPL", "MSFT", "FOO"], "timeout"))
    assert print_status(settings, as_json=True, check=True, now=ny(2026, 3, 6, 23)) == EXIT_STALE
    [eod] = json.loads(capsys.readouterr().out)["flows"]
    assert eod["problem"] == "no good run yet"


def test_check_without_a_database_fails(tmp_path: Path) -> None:
    """--check on a machine where the daemon never ran exits 2; plain status exits 1."""
    settings = settings_for(tmp_path, EOD)
    assert print_status(settings, as_json=False, check=True) == EXIT_STALE
    assert print_status(settings, as_json=False) == 1


def test_cli_check_and_max_age(
    tmp_path: Path, eod_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status --check --max-age` passes for a generous age, fails for a tight one."""
    settings_for(tmp_path, EOD)
    config = str(tmp_path / "finappd.toml")
    assert main(["--config", config, "status", "--check", "--max-age", "99999d"]) == 0
    assert main(["--config", config, "status", "--check", "--max-age", "1s"]) == EXIT_STALE


def test_cli_rejects_a_bad_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed --max-age is a usage error naming the expected form."""
    with pytest.raises(SystemExit) as exc:
        main(["status", "--check", "--max-age", "soon"])
    assert exc.value.code == 2
    assert "expected a duration" in capsys.readouterr().err


def test_status_line_is_one_short_line() -> None:
    """STATUS= names each flow's outcome and next fire, with a reload error first."""
    settings = Settings.model_validate(
        {
            "flows": [
                {"name": "eod", "provider": "yahoo", "tickers": ["A"], "every": "1h"},
                {"name": "fx", "provider": "yahoo", "tickers": ["B"], "every": "1h"},
                {"name": "new", "provider": "yahoo", "tickers": ["C"], "every": "1h"},
            ]
        }
    )
    line = status_line(
        settings,
        {"eod": ("partial", 9, 10, utc(2026, 3, 9, 22, 31))},
        ["fx"],
        {"eod": utc(2026, 3, 10, 22, 30), "new": None},
        note="reload failed, previous config kept: flows.0.cron: bad",
    )
    assert line == (
        "reload failed, previous config kept: flows.0.cron: bad; "
        "eod: partial 9/10 at Mon 22:31Z, next Tue 22:30Z; fx: running; new: waiting"
    )
    assert "\n" not in line


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.setblocking(False)
    yield sock
    sock.close()


async def test_cron_flow_is_scheduled_at_start(
    tmp_path: Path, notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cron flow gets a next fire time at start-up (APScheduler would add it paused)."""
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.getsockname())
    settings = settings_for(tmp_path, EOD)
    await Daemon(settings, stop_after=0.3).run()
    ready = notify_socket.recv(4096).decode()
    expected = next_fire(settings.flow("eod"), datetime.now(UTC), None)
    assert expected is not None
    assert ready == f"READY=1\nSTATUS=eod: waiting, next {expected.astimezone(UTC):%a %H:%MZ}"
    assert settings.store.resolved_path() == tmp_path / "d.sqlite3"


def test_provider_state_is_as_of_its_newest_run(
    tmp_path: Path, eod_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """A provider that turned tickers away in its newest run shows why; one that did not, ok."""
    settings = settings_for(tmp_path, EOD)
    print_status(settings, as_json=True, now=ny(2026, 3, 9, 8))
    [yahoo] = json.loads(capsys.readouterr().out)["providers"]
    assert (yahoo["state"], "state_detail" in yahoo) == ("ok", False)
    run_id = record_run(eod_store, ny(2026, 3, 9, 22, 30), {"MSFT": "unavailable"})
    print_status(settings, as_json=False, now=ny(2026, 3, 10, 8))
    text = capsys.readouterr().out
    assert f"state      circuit_open as of run #{run_id}: MSFT unavailable" in text
