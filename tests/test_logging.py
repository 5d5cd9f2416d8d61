"""JSON log lines, and the syslog priority prefix when stdout is the journal."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pytest
import structlog

from finappd.logging import configure_logging, syslog_priority
from finappd.systemd import is_journal_stream


def journal_env(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Point ``$JOURNAL_STREAM`` at ``path``'s device and inode, as systemd does for stdout."""
    st = os.stat(path)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")


def emit_all() -> None:
    """Log one line at each level, from structlog and from a stdlib (library) logger."""
    log = structlog.get_logger("finappd.test")
    log.debug("a.debug")
    log.info("a.info", n=1)
    log.warning("a.warning")
    log.error("a.error")
    logging.getLogger("aiohttp.client").warning("library %s", "warning")


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        (logging.DEBUG, 7),
        (logging.INFO, 6),
        (logging.WARNING, 4),
        (logging.ERROR, 3),
        (logging.CRITICAL, 2),
    ],
)
def test_syslog_priority_per_level(level: int, priority: int) -> None:
    """Each stdlib level maps to its syslog priority."""
    assert syslog_priority(level) == priority


def test_journal_stream_gets_priority_prefix_and_pure_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When stdout is the journal, every line is `<N>` + one JSON object with the right N."""
    out = tmp_path / "stdout"
    out.touch()
    journal_env(monkeypatch, out)
    with out.open("w", encoding="utf-8") as stream:
        configure_logging("debug", "json", stream)
        emit_all()
    lines = out.read_text(encoding="utf-8").splitlines()
    prefixes = [line[:3] for line in lines]
    assert prefixes == ["<7>", "<6>", "<4>", "<3>", "<4>"]
    records = [json.loads(line[3:]) for line in lines]
    assert [r["event"] for r in records] == [
        "a.debug",
        "a.info",
        "a.warning",
        "a.error",
        "library warning",
    ]
    assert records[-1]["logger"] == "aiohttp.client"


def test_other_stream_gets_no_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When $JOURNAL_STREAM names another file, lines are plain JSON."""
    other = tmp_path / "journal"
    other.touch()
    journal_env(monkeypatch, other)
    out = tmp_path / "stdout"
    with out.open("w", encoding="utf-8") as stream:
        configure_logging("info", "json", stream)
        emit_all()
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    assert all(isinstance(json.loads(line), dict) for line in lines)


@pytest.mark.parametrize("value", ["", "garbage", "1:", ":2", "x:y"])
def test_malformed_journal_stream_is_not_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A missing or malformed $JOURNAL_STREAM never matches."""
    monkeypatch.setenv("JOURNAL_STREAM", value)
    with (tmp_path / "f").open("w", encoding="utf-8") as stream:
        assert not is_journal_stream(stream)


def test_stream_without_fileno_is_not_the_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    """An in-memory stream is never the journal, and logging to it still works."""
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    stream = io.StringIO()
    assert not is_journal_stream(stream)
    configure_logging("info", "json", stream)
    structlog.get_logger("finappd.test").info("hello")
    assert json.loads(stream.getvalue())["event"] == "hello"
