"""diff_settings: what a reload must do, one row per kind of config edit."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from finappd.config import Settings
from finappd.reload import SettingsDiff, diff_settings

Config = dict[str, Any]

BASE: Config = {
    "store": {"path": "diff.sqlite3"},
    "providers": {
        "yahoo": {"max_concurrency": 4, "rate": "60/minute"},
        "stooq": {"max_concurrency": 2, "api_key": "k"},
    },
    "flows": [
        {"name": "eod", "provider": "yahoo", "tickers": ["AAPL", "MSFT"], "every": "1h"},
        {
            "name": "late",
            "provider": "stooq",
            "tickers": ["SPY"],
            "cron": "30 22 * * mon-fri",
            "timezone": "America/New_York",
        },
    ],
}


def edit(change: Callable[[Config], object]) -> Config:
    """BASE with ``change`` applied to a deep copy of it."""
    config = copy.deepcopy(BASE)
    change(config)
    return config


def flow(config: Config, name: str) -> dict[str, Any]:
    """The flow table called ``name`` in ``config``."""
    found: dict[str, Any] = next(f for f in config["flows"] if f["name"] == name)
    return found


FX = {"name": "fx", "provider": "yahoo", "tickers": ["EURUSD=X"], "cron": "0 3 * * *"}

ROWS: list[tuple[str, Config, SettingsDiff]] = [
    ("nothing", BASE, SettingsDiff(flows_unchanged=("eod", "late"))),
    (
        "flow-added",
        edit(lambda c: c["flows"].append(FX)),
        SettingsDiff(flows_added=("fx",), flows_unchanged=("eod", "late")),
    ),
    (
        "flow-removed",
        edit(lambda c: c["flows"].pop(0)),
        SettingsDiff(flows_removed=("eod",), flows_unchanged=("late",)),
    ),
    (
        "tickers-changed",
        edit(lambda c: flow(c, "eod").update(tickers=["AAPL", "MSFT", "^GSPC"])),
        SettingsDiff(flows_changed=("eod",), flows_unchanged=("late",)),
    ),
    (
        "interval-changed",
        edit(lambda c: flow(c, "eod").update(every="2h")),
        SettingsDiff(flows_changed=("eod",), flows_rescheduled=("eod",), flows_unchanged=("late",)),
    ),
    (
        "interval-to-cron",
        edit(lambda c: (flow(c, "eod").pop("every"), flow(c, "eod").update(cron="0 23 * * *"))),
        SettingsDiff(flows_changed=("eod",), flows_rescheduled=("eod",), flows_unchanged=("late",)),
    ),
    (
        "timezone-changed",
        edit(lambda c: flow(c, "late").update(timezone="Europe/London")),
        SettingsDiff(
            flows_changed=("late",), flows_rescheduled=("late",), flows_unchanged=("eod",)
        ),
    ),
    (
        "provider-limits-changed",
        edit(lambda c: c["providers"]["yahoo"].update(max_concurrency=8)),
        SettingsDiff(flows_unchanged=("eod", "late"), providers_rebuilt=("yahoo",)),
    ),
    (
        "provider-added-and-used",
        edit(
            lambda c: (
                c["providers"].update(tiingo={"api_key": "k"}),
                flow(c, "eod").update(provider="tiingo", fallback=["yahoo"]),
            )
        ),
        SettingsDiff(
            flows_changed=("eod",), flows_unchanged=("late",), providers_rebuilt=("tiingo",)
        ),
    ),
    (
        "provider-removed-with-its-flow",
        edit(lambda c: (c["providers"].pop("stooq"), c["flows"].pop(1))),
        SettingsDiff(
            flows_removed=("late",), flows_unchanged=("eod",), providers_rebuilt=("stooq",)
        ),
    ),
    (
        "store-changed",
        edit(lambda c: c["store"].update(path="elsewhere.sqlite3")),
        SettingsDiff(flows_unchanged=("eod", "late"), restart_needed=("store",)),
    ),
    (
        "logging-changed",
        edit(lambda c: c.update(logging={"level": "debug"})),
        SettingsDiff(flows_unchanged=("eod", "late"), logging_changed=True),
    ),
    (
        "grace-period-only",
        edit(lambda c: c.update(grace_period="5s")),
        SettingsDiff(flows_unchanged=("eod", "late")),
    ),
    (
        "everything-at-once",
        edit(
            lambda c: (
                c["flows"].pop(1),
                c["flows"].append(FX),
                flow(c, "eod").update(every="15m"),
                c["providers"]["yahoo"].update(rate="30/minute"),
                c["providers"].pop("stooq"),
            )
        ),
        SettingsDiff(
            flows_added=("fx",),
            flows_removed=("late",),
            flows_changed=("eod",),
            flows_rescheduled=("eod",),
            providers_rebuilt=("stooq", "yahoo"),
        ),
    ),
]


@pytest.mark.parametrize(("new", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_diff_settings_says_what_a_reload_must_do(new: Config, expected: SettingsDiff) -> None:
    """Each edit of the running config yields exactly its flows and providers to touch."""
    assert diff_settings(Settings.model_validate(BASE), Settings.model_validate(new)) == expected


def test_the_log_line_keeps_the_reload_event_fields() -> None:
    """``as_log`` gives ``config.reloaded`` its fields as lists, providers as providers_changed."""
    diff = SettingsDiff(flows_added=("fx",), providers_rebuilt=("yahoo",))
    assert diff.as_log() == {
        "flows_added": ["fx"],
        "flows_removed": [],
        "flows_changed": [],
        "flows_rescheduled": [],
        "providers_changed": ["yahoo"],
        "restart_needed": [],
    }
