"""The systemd unit and the install guide: verify, security score, the daemon in the environment
systemd gives it (dirs, credentials, notify, watchdog, journal), and the readers' permissions.

``systemd-analyze``/``systemd-sysusers`` tests skip where those tools are missing; the
permission tests need root (to act as two users) and skip otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from finappd.config import Settings
from tests import procs
from tests.conftest import MakeServer

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "systemd"
UNIT = DEPLOY / "finappd.service"
VENV = Path(sys.executable).parent.parent
ANALYZE = shutil.which("systemd-analyze")
SYSUSERS = shutil.which("systemd-sysusers")
SETPRIV = shutil.which("setpriv")

needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def unit_settings(text: str | None = None) -> dict[str, dict[str, list[str]]]:
    """The unit as ``{section: {key: [values, in order]}}`` (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (text if text is not None else UNIT.read_text(encoding="utf-8")).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def one(section: str, key: str) -> str:
    """The single value of ``key`` in ``section`` of the unit."""
    [value] = unit_settings()[section][key]
    return value


def installed_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's finappd, as `verify` checks it exists."""
    text = UNIT.read_text(encoding="utf-8").replace(
        "/opt/finappd/venv/bin/finappd", str(VENV / "bin" / "finappd")
    )
    path = tmp_path / "finappd.service"
    path.write_text(text, encoding="utf-8")
    return path


def test_unit_has_the_service_contract() -> None:
    """Type=notify with a watchdog, no restart on exit 78, fixed user, dirs, credentials, reload."""
    unit, service = unit_settings()["Unit"], unit_settings()["Service"]
    assert unit["Wants"] == ["network-online.target"]  # time-sync.target: ordered, not pulled
    assert set(unit["After"][0].split()) == {"network-online.target", "time-sync.target"}
    assert {"StartLimitIntervalSec", "StartLimitBurst"} <= set(unit)
    assert one("Service", "Type") == "notify"
    assert one("Service", "WatchdogSec") == "60s"
    assert one("Service", "Restart") == "on-failure"
    assert one("Service", "RestartPreventExitStatus") == "78"
    assert one("Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("Service", "ExecStart") == "/opt/finappd/venv/bin/finappd run"
    assert (one("Service", "User"), one("Service", "Group")) == ("finappd", "finappd")
    assert "DynamicUser" not in service
    assert (one("Service", "StateDirectory"), one("Service", "StateDirectoryMode")) == (
        "finappd",
        "0750",
    )
    assert one("Service", "ConfigurationDirectory") == "finappd"
    assert (one("Service", "RuntimeDirectory"), one("Service", "RuntimeDirectoryMode")) == (
        "finappd",
        "0750",
    )
    assert one("Service", "UMask") == "0027"
    assert all(
        re.fullmatch(r"\w+_api_key:finappd\.\w+_api_key", v) for v in service["LoadCredential"][:-1]
    )
    assert service["LoadCredential"][-1] == "api_token:finappd.api_token"
    stop = float(one("Service", "TimeoutStopSec").removesuffix("s"))
    assert stop > Settings().grace_period.total_seconds() + 30


@needs_analyze
def test_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a warning about it."""
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "verify", str(installed_unit(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if "finappd" in line
    ]
    assert result.returncode == 0, result.stderr
    assert complaints == []


@needs_analyze
def test_unit_security_exposure_is_at_most_1_5(tmp_path: Path) -> None:
    """`systemd-analyze security --offline=true` rates the unit 1.5 or better."""
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--threshold=15", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for finappd\.service: (\d+\.\d)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match[1]) <= 1.5
    assert result.returncode == 0


@pytest.mark.skipif(SYSUSERS is None or os.geteuid() != 0, reason="needs systemd-sysusers, root")
def test_sysusers_file_creates_user_and_group(tmp_path: Path) -> None:
    """The sysusers.d file makes a system user and group finappd, home /var/lib/finappd."""
    assert SYSUSERS is not None
    (tmp_path / "etc" / "sysusers.d").mkdir(parents=True)
    shutil.copy(DEPLOY / "finappd.sysusers", tmp_path / "etc" / "sysusers.d" / "finappd.conf")
    subprocess.run([SYSUSERS, f"--root={tmp_path}"], check=True, capture_output=True)
    [user] = (tmp_path / "etc" / "passwd").read_text(encoding="utf-8").splitlines()
    name, _, uid, gid, _, home, shell = user.split(":")
    assert (name, home) == ("finappd", "/var/lib/finappd")
    assert int(uid) < 1000
    assert shell.endswith("nologin")
    [group] = (tmp_path / "etc" / "group").read_text(encoding="utf-8").splitlines()
    assert group.split(":")[:3] == ["finappd", "x", gid]


# -- the install guide, followed in a scratch root, with the environment systemd sets --------


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""
    with procs.notify_socket(tmp_path / "notify.sock") as sock:
        yield sock


class Scratch:
    """A scratch root standing in for /, set up the way the README's install guide says."""

    def __init__(self, root: Path, sim_url: str) -> None:
        self.root = root
        self.etc = root / "etc" / "finappd"
        self.state = root / "var" / "lib" / "finappd"
        self.credstore = root / "etc" / "credstore"
        self.credentials = root / "run" / "credentials" / "finappd.service"
        # Step 3: the example config, edited ("sudoedit") to use the simulator hourly.
        self.etc.mkdir(parents=True)
        example = (ROOT / "deploy" / "finappd.example.toml").read_text(encoding="utf-8")
        example = example.replace(
            "[providers.yahoo]\n", f'[providers.yahoo]\nbase_url = "{sim_url}"\n'
        )
        example = re.sub(r"^cron = .*$", 'every = "1h"', example, flags=re.M)
        example = example.replace('deadline = "30m"', 'deadline = "20s"')
        (self.etc / "finappd.toml").write_text(example, encoding="utf-8")
        # Keys: a file in the credential store, copied by LoadCredential= at start.
        self.credstore.mkdir(mode=0o700, parents=True)
        (self.credstore / "finappd.yahoo_api_key").write_text("S3CRET-KEY", encoding="utf-8")
        self.state.mkdir(mode=0o750, parents=True)
        self.runtime = root / "run" / "finappd"  # RuntimeDirectory=: the API's socket
        self.runtime.mkdir(mode=0o750, parents=True)

    def load_credentials(self) -> None:
        """Do what systemd does for each LoadCredential=ID:NAME (a missing NAME is skipped)."""
        self.credentials.mkdir(parents=True, exist_ok=True)
        for value in unit_settings()["Service"]["LoadCredential"]:
            ident, _, name = value.partition(":")
            source = self.credstore / name
            if source.exists():
                shutil.copy(source, self.credentials / ident)

    def env(self, **extra: str) -> dict[str, str]:
        """The service's environment: systemd's directory variables, no FINAPPD_CONFIG."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FINAPPD_", "JOURNAL"))}
        env.update(
            STATE_DIRECTORY=str(self.state),
            RUNTIME_DIRECTORY=str(self.runtime),
            CONFIGURATION_DIRECTORY=str(self.etc),
            CREDENTIALS_DIRECTORY=str(self.credentials),
        )
        env.update(extra)
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the /usr/local/bin/finappd wrapper, pointed at the scratch root."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINAPPD_")}
        env.update(
            FINAPPD_VENV=str(VENV),
            FINAPPD_CONFIG=str(self.etc / "finappd.toml"),
            STATE_DIRECTORY=str(self.state),
            RUNTIME_DIRECTORY=str(self.runtime),
        )
        return subprocess.run(
            [str(DEPLOY / "finappd-cli"), *args],
            env=env,
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )


async def test_install_guide_in_a_scratch_root(
    tmp_path: Path, sim_server: MakeServer, notify_socket: socket.socket
) -> None:
    """The guide's steps work: config found via systemd's dirs, key from credentials, READY,
    watchdog pings, journal priority prefixes, reload, trigger through the API socket,
    status --check, snapshot, stop."""
    sim = await sim_server()
    assert sim.url is not None
    scratch = Scratch(tmp_path / "root", sim.url)

    checked = scratch.cli("check-config")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["flows"][0]["name"] == "eod"

    scratch.load_credentials()
    stdout = tmp_path / "journal"
    stdout.touch()
    st = stdout.stat()
    env = scratch.env(
        NOTIFY_SOCKET=notify_socket.getsockname(),
        WATCHDOG_USEC="400000",
        JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
    )
    shown = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "finappd",
        "check-config",
        env=env,
        cwd=scratch.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    shown_out, shown_err = await shown.communicate()
    assert json.loads(shown_out)["providers"]["yahoo"]["api_key"] == "**********"
    assert b"S3CRET" not in shown_out + shown_err

    received: list[str] = []

    async def collect() -> None:
        # Read as systemd does: an unread datagram queue fills up and blocks the sender.
        while True:
            received.extend(procs.received(notify_socket))
            await asyncio.sleep(0.05)

    collector = asyncio.create_task(collect())
    with stdout.open("w", encoding="utf-8") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "finappd", "run", env=env, cwd=scratch.root, stdout=out
        )
        try:
            async with asyncio.timeout(30):
                while not (scratch.state / "finappd.sqlite3").exists() or "run.finished" not in (
                    stdout.read_text(encoding="utf-8")
                ):
                    await asyncio.sleep(0.1)
            async with asyncio.timeout(10):  # a few watchdog periods
                while received.count("WATCHDOG=1") < 3:
                    await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGHUP)  # ExecReload=
            async with asyncio.timeout(10):
                while "config.reloaded" not in stdout.read_text(encoding="utf-8"):
                    await asyncio.sleep(0.1)
            # The API on its default socket: a run triggered through the daemon.
            assert (scratch.runtime / "api.sock").is_socket()
            # A thread: the simulator serving the run lives on this test's event loop.
            triggered = await asyncio.to_thread(scratch.cli, "trigger", "eod", "--wait")
            assert triggered.returncode == 0, triggered.stdout + triggered.stderr
            end = json.loads(triggered.stdout.splitlines()[-1])
            assert (end["status"], end["trigger"], end["final"]) == ("ok", "api", True)
            status = scratch.cli("status", "--check")
            assert status.returncode == 0, status.stdout + status.stderr
            assert "eod: ok" in status.stdout
            snapshot = scratch.cli("export-snapshot", str(tmp_path / "snap.sqlite3"))
            assert snapshot.returncode == 0, snapshot.stderr
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
        finally:
            collector.cancel()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    received.extend(procs.received(notify_socket))
    assert received[0].startswith("READY=1\nSTATUS=")
    assert received.count("WATCHDOG=1") >= 3
    assert any(n.startswith("RELOADING=1") for n in received)
    assert received[-1] == "STOPPING=1\nSTATUS=stopping"
    lines = stdout.read_text(encoding="utf-8").splitlines()
    priorities = {"debug": "7", "info": "6", "warning": "4", "error": "3"}
    for line in lines:
        match = re.fullmatch(r"<(\d)>(\{.*\})", line)
        assert match, line
        assert priorities[json.loads(match[2])["level"]] == match[1]
    assert (tmp_path / "snap.sqlite3").stat().st_size > 0


def test_invalid_config_exits_78_so_systemd_does_not_restart(tmp_path: Path) -> None:
    """A bad config under systemd's environment exits 78, which the unit never restarts."""
    scratch = Scratch(tmp_path / "root", "http://127.0.0.1:9")
    (scratch.etc / "finappd.toml").write_text("grace_period = 'soon'\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "finappd", "run"],
        env=scratch.env(),
        cwd=scratch.root,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == int(one("Service", "RestartPreventExitStatus"))
    [line] = result.stderr.splitlines()
    assert json.loads(line)["key"] == "grace_period"


def test_watchdog_is_not_pinged_for_another_pid(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    """WATCHDOG_PID naming another process disables the pings (systemd's rule)."""
    from finappd.systemd import watchdog_interval

    env = {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    os.environ.update(env)
    try:
        assert watchdog_interval() is None
        os.environ["WATCHDOG_PID"] = str(os.getpid())
        assert watchdog_interval() == 30.0
    finally:
        for key in env:
            os.environ.pop(key, None)


# -- hardening that can be checked without systemd --------------------------------------------


MDWE = """
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, REFUSE_EXEC_GAIN
    sys.exit(99)
os.execv(sys.executable, [sys.executable, "-m", "finappd", *sys.argv[1:]])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")
async def test_flow_runs_with_memory_deny_write_execute(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A flow runs with no writable-and-executable memory, as MemoryDenyWriteExecute= allows."""
    sim = await sim_server()
    assert sim.url is not None
    config = tmp_path / "finappd.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [store]
            path = "{tmp_path / "d.sqlite3"}"
            [logging]
            format = "json"
            [providers.yahoo]
            base_url = "{sim.url}"
            [[flows]]
            name = "eod"
            provider = "yahoo"
            tickers = ["AAPL", "MSFT", "^GSPC"]
            every = "1h"
            """
        ),
        encoding="utf-8",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        MDWE,
        "--config",
        str(config),
        "run-once",
        "eod",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    if proc.returncode == 99:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert proc.returncode == 0, err.decode()
    assert json.loads(out.decode().splitlines()[-1])["status"] == "ok"


# -- who may read the database: a group member next to the daemon's user ---------------------

DAEMON_UID, READER_UID = 64990, 64991

WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
conn.execute("INSERT INTO t VALUES (1)")
print("written", flush=True)
sys.stdin.read()  # hold the connection open, as the daemon does, until told to stop
conn.execute("INSERT INTO t VALUES (2)")
conn.close()
"""

READER = """
import sqlite3, sys
try:
    conn = sqlite3.connect(f"file:{sys.argv[1]}?mode={sys.argv[2]}", uri=True)
    if sys.argv[2] == "rw":
        conn.execute("INSERT INTO t VALUES (3)")
        conn.commit()
    print(conn.execute("SELECT count(*) FROM t").fetchone()[0])
except sqlite3.Error as exc:
    print("error:", exc)
"""


def python_for(uid: int) -> str | None:
    """An interpreter another user may run (ours may live under a private home)."""
    assert SETPRIV is not None
    for candidate in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(
            [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", candidate, "-c", ""],
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return candidate
    return None


@pytest.fixture
def as_user() -> Iterator[tuple[list[str], list[str], Path]]:
    """Command prefixes running Python as the daemon's user (with the unit's UMask) and as a
    reader in its group, and a scratch directory both may enter."""
    if os.geteuid() != 0 or SETPRIV is None:
        pytest.skip("needs root and setpriv to act as two users")
    python = python_for(DAEMON_UID)
    if python is None:
        pytest.skip("no Python interpreter that another user may run")
    umask = int(one("Service", "UMask"), 8)
    daemon = [SETPRIV, f"--reuid={DAEMON_UID}", f"--regid={DAEMON_UID}", "--clear-groups"]
    reader = [SETPRIV, f"--reuid={READER_UID}", f"--regid={READER_UID}", f"--groups={DAEMON_UID}"]
    # pytest's tmp_path sits in a root-only directory; the two users need one they can enter.
    with tempfile.TemporaryDirectory(prefix="finappd-perm-") as scratch:
        Path(scratch).chmod(0o755)
        yield (
            [*daemon, python, "-c", f"import os; os.umask({umask:#o})\n{WRITER}"],
            [*reader, python, "-c", f"import os; os.umask(0o022)\n{READER}"],
            Path(scratch),
        )


def state_dir(scratch: Path, mode: int) -> Path:
    """The state directory as systemd makes it: owned by the daemon's user, ``mode``."""
    state = scratch / "state"
    state.mkdir()
    os.chown(state, DAEMON_UID, DAEMON_UID)
    state.chmod(mode)
    return state


def read(reader: list[str], db: Path, mode: str = "ro") -> str:
    """What the reader script prints for ``db`` opened in ``mode``."""
    result = subprocess.run([*reader, str(db), mode], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_group_member_reads_while_the_daemon_runs_and_never_breaks_it(
    as_user: tuple[list[str], list[str], Path],
) -> None:
    """With the unit's modes a group member reads live data, cannot write, and cannot hurt the
    daemon; while the daemon is stopped the reader is refused (use a snapshot)."""
    daemon, reader, scratch = as_user
    state = state_dir(scratch, int(one("Service", "StateDirectoryMode"), 8))
    db = state / "finappd.sqlite3"
    writer = subprocess.Popen(
        [*daemon, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "written"
        assert oct(db.stat().st_mode & 0o777) == "0o640"
        assert read(reader, db) == "1"
        assert read(reader, db, "rw").startswith("error: attempt to write a readonly database")
    finally:
        writer.communicate("", timeout=30)
    assert writer.returncode == 0
    assert sorted(p.name for p in state.iterdir()) == ["finappd.sqlite3"]  # -wal/-shm removed
    assert read(reader, db).startswith("error:")
    restarted = subprocess.run(
        [*daemon, str(db)], input="", capture_output=True, text=True, check=False
    )
    assert restarted.returncode == 0, restarted.stderr


def test_a_group_writable_state_dir_would_let_a_reader_break_the_daemon(
    as_user: tuple[list[str], list[str], Path],
) -> None:
    """Why the state directory is not group-writable: a reader's -shm locks the daemon out."""
    daemon, reader, scratch = as_user
    state = state_dir(scratch, 0o2770)
    db = state / "finappd.sqlite3"
    subprocess.run([*daemon, str(db)], input="", capture_output=True, check=True)
    assert read(reader, db) == "2"  # works, and leaves -shm/-wal owned by the reader
    restarted = subprocess.run(
        [*daemon, str(db)], input="", capture_output=True, text=True, check=False
    )
    assert restarted.returncode != 0
    assert "readonly database" in restarted.stderr
