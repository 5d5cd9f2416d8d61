"""Broken configurations through the CLI: exit 78 and one line naming the key, no traceback.

Every case runs in process through ``cli.main``; a few also run as a real process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from finappd import cli
from finappd.config import EX_CONFIG

GOOD = """\
grace_period = "10s"

[store]
path = "{tmp}/db.sqlite3"

[logging]
format = "json"

[providers.yahoo]
base_url = "http://127.0.0.1:9"
max_concurrency = 2
rate = "60/minute"

[[flows]]
name = "eod"
provider = "yahoo"
tickers = ["AAPL", "MSFT"]
every = "1h"
timezone = "America/New_York"
num_workers = 4
"""

FLOW = GOOD[GOOD.index("[[flows]]") :]


@dataclass(frozen=True)
class Case:
    """One broken config: how to break the good one, the key the error must name."""

    id: str
    key: str
    edit: Callable[[str], str] = lambda text: text
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] = lambda tmp: None
    args: tuple[str, ...] = ("run",)
    says: str = ""  # a word the problem must contain


def swap(old: str, new: str) -> Callable[[str], str]:
    """An edit replacing ``old`` (which must be in the text) by ``new``."""

    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def write_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    """A setup writing ``data`` to ``tmp/name``."""

    def setup(tmp: Path) -> None:
        (tmp / name).write_bytes(data)

    return setup


def make_dir(name: str) -> Callable[[Path], None]:
    """A setup creating the directory ``tmp/name``."""
    return lambda tmp: (tmp / name).mkdir(parents=True)


CASES = [
    Case("unknown-provider", "flows.0.provider", swap('provider = "yahoo"', 'provider = "nope"')),
    Case(
        "unknown-provider-kind",
        "providers.yahoo.kind",
        swap("[providers.yahoo]", '[providers.yahoo]\nkind = "bloomberg"'),
    ),
    Case("bad-cron", "flows.0.cron", swap('every = "1h"', 'cron = "61 25 * * *"'), says="cron"),
    Case(
        "bad-cron-fields",
        "flows.0.cron",
        swap('every = "1h"', 'cron = "30 22 * *"'),
        says="cron",
    ),
    Case("bad-timezone", "flows.0.timezone", swap("America/New_York", "Mars/Olympus")),
    Case("num-workers-0", "flows.0.num_workers", swap("num_workers = 4", "num_workers = 0")),
    Case(
        "missing-api-key",
        "providers.tiingo.api_key",
        lambda text: (
            text.replace('provider = "yahoo"', 'provider = "tiingo"')
            + '\n[providers.tiingo]\nbase_url = "http://127.0.0.1:9"\n'
        ),
        says="key",
    ),
    Case(
        "tickers-file-missing",
        "flows.0",
        swap('tickers = ["AAPL", "MSFT"]', 'tickers_file = "{tmp}/nope.txt"'),
        says="tickers_file",
    ),
    Case(
        "tickers-file-is-a-directory",
        "flows.0",
        swap('tickers = ["AAPL", "MSFT"]', 'tickers_file = "{tmp}/tickers.d"'),
        setup=make_dir("tickers.d"),
        says="tickers_file",
    ),
    Case(
        "tickers-file-not-utf8",
        "flows.0",
        swap('tickers = ["AAPL", "MSFT"]', 'tickers_file = "{tmp}/t.txt"'),
        setup=write_bytes("t.txt", b"AAPL\n\xff\xfe\n"),
        says="tickers_file",
    ),
    Case("duplicate-flow-names", "flows.1.name", lambda text: text + "\n" + FLOW),
    Case("toml-syntax-error", "config", swap("[providers.yahoo]", "[providers.yahoo"), says="TOML"),
    Case("config-missing", "config", args=("--config", "{tmp}/absent.toml", "run")),
    Case(
        "config-is-a-directory",
        "config",
        setup=make_dir("conf.d"),
        args=("--config", "{tmp}/conf.d", "run"),
    ),
    Case(
        "config-not-utf8",
        "config",
        setup=write_bytes("latin1.toml", b'[store]\npath = "caf\xe9.sqlite3"\n'),
        args=("--config", "{tmp}/latin1.toml", "run"),
    ),
    Case(
        "deadline-not-shorter-than-interval",
        "flows.0",
        swap('every = "1h"', 'every = "5m"\ndeadline = "5m"'),
        says="deadline",
    ),
    Case("every-and-cron", "flows.0", swap('every = "1h"', 'every = "1h"\ncron = "0 * * * *"')),
    Case("no-schedule", "flows.0", swap('every = "1h"\n', "")),
    Case("no-tickers", "flows.0", swap('tickers = ["AAPL", "MSFT"]\n', "")),
    Case("bad-ticker", "flows.0.tickers", swap('"MSFT"', '"MS FT"')),
    Case("bad-flow-name", "flows.0.name", swap('name = "eod"', 'name = "end of day"')),
    Case("bad-flow-kind", "flows.0.kind", swap('name = "eod"', 'name = "eod"\nkind = "options"')),
    Case("bad-rate", "providers.yahoo.rate", swap('rate = "60/minute"', 'rate = "lots"')),
    Case(
        "negative-concurrency",
        "providers.yahoo.max_concurrency",
        swap("max_concurrency = 2", "max_concurrency = -1"),
    ),
    Case(
        "misspelt-key",
        "providers.yahoo.max_concurency",
        swap("max_concurrency = 2", "max_concurency = 2"),
    ),
    Case("misspelt-table", "stor", swap("[store]", "[stor]")),
    Case("bad-duration", "grace_period", swap('grace_period = "10s"', 'grace_period = "soon"')),
    Case(
        "bad-base-url",
        "providers.yahoo.base_url",
        swap('base_url = "http://127.0.0.1:9"', 'base_url = "ftp://example"'),
    ),
    Case(
        "bad-synchronous",
        "store.synchronous",
        swap("[store]", '[store]\nsynchronous = "OFF"'),
    ),
    Case("bad-log-level", "logging.level", swap('format = "json"', 'level = "loud"')),
    Case(
        "fallback-not-configured",
        "flows.0.fallback.0",
        swap('provider = "yahoo"', 'provider = "yahoo"\nfallback = ["backup"]'),
    ),
    Case(
        "provider-lacks-capability",
        "flows.0.provider",
        lambda text: text.replace('provider = "yahoo"', 'provider = "frankfurter"'),
        says="daily_bars",
    ),
    Case(
        "env-not-a-number",
        "providers.yahoo.max_concurrency",
        env={"FINAPPD_PROVIDERS__YAHOO__MAX_CONCURRENCY": "many"},
    ),
    Case("env-not-json", "flows", env={"FINAPPD_FLOWS": "eod,intraday"}),
    Case(
        "credential-unreadable",
        "providers.yahoo.api_key",
        env={"CREDENTIALS_DIRECTORY": "{tmp}/creds"},
        setup=make_dir("creds/yahoo_api_key"),
    ),
    Case("run-once-unknown-flow", "flows", args=("run-once", "nightly"), says="nightly"),
]


def prepare(tmp_path: Path, case: Case) -> tuple[list[str], dict[str, str]]:
    """Write the case's config and files; return its CLI arguments and environment additions."""
    text = case.edit(GOOD).replace("{tmp}", str(tmp_path))
    (tmp_path / "finappd.toml").write_text(text, encoding="utf-8")
    case.setup(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    if "--config" not in args:
        args = ["--config", str(tmp_path / "finappd.toml"), *args]
    return args, {k: v.replace("{tmp}", str(tmp_path)) for k, v in case.env.items()}


def run_in_process(
    tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """``cli.main`` on the case's config, as systemd would start it (no TTY, the case's env);
    returns the exit code, stdout and stderr."""
    args, env = prepare(tmp_path, case)
    for name in os.environ:
        if name.startswith("FINAPPD_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def run_process(tmp_path: Path, case: Case) -> subprocess.CompletedProcess[str]:
    """Run ``python -m finappd`` on the case's config the same way, as a real child process."""
    args, extra = prepare(tmp_path, case)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINAPPD_")}
    env.pop("CREDENTIALS_DIRECTORY", None)
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "finappd", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=20,  # a config wrongly accepted starts the daemon: fail fast
        check=False,
    )


def assert_one_line_naming_the_key(case: Case, code: int, out: str, err: str) -> None:
    """Exit 78, nothing on stdout, one JSON error line on stderr naming the case's key."""
    assert "Traceback" not in err + out, err
    assert code == EX_CONFIG, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = json.loads(lines[0])
    assert (line["event"], line["level"]) == ("config.invalid", "error")
    assert line["key"] == case.key, line
    assert line["problem"]
    assert case.says.lower() in line["problem"].lower(), line


def test_the_good_config_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The config every case breaks is itself valid, so each failure is the case's own."""
    code, _, err = run_in_process(
        tmp_path, Case("good", "", args=("check-config",)), monkeypatch, capsys
    )
    assert code == 0, err


def test_the_matrix_is_wide_enough() -> None:
    """At least fifteen distinct broken configs are checked."""
    assert len({case.id for case in CASES}) == len(CASES) >= 15


# A config wrongly accepted by `run` starts the daemon in this process: fail fast.
@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_config_exits_78_with_one_line_naming_the_key(
    tmp_path: Path,
    case: Case,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI refuses a broken config: exit 78, one JSON line naming the key, no traceback."""
    assert_one_line_naming_the_key(case, *run_in_process(tmp_path, case, monkeypatch, capsys))


#: Through a real process too: a TOML error, an environment override and an unknown flow
#: (refused after logging is configured), so nothing else reaches stderr or stdout.
REAL = ("toml-syntax-error", "env-not-json", "run-once-unknown-flow")


@pytest.mark.parametrize("case", [c for c in CASES if c.id in REAL], ids=lambda c: c.id)
def test_a_real_process_exits_78_with_one_line_naming_the_key(tmp_path: Path, case: Case) -> None:
    """``python -m finappd`` as systemd starts it: exit 78 and the one line, no traceback."""
    proc = run_process(tmp_path, case)
    assert_one_line_naming_the_key(case, proc.returncode, proc.stdout, proc.stderr)
