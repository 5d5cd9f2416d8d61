"""The API's pure parts: listen addresses, the run board's fan-out, the wait buckets."""

from __future__ import annotations

from pathlib import Path

import pytest

from finappd.api import RunBoard
from finappd.api.board import WATCH_QUEUE
from finappd.config import ApiSettings, Listen
from finappd.config.service import parse_listen
from finappd.flows.run import RunProgress
from finappd.metrics import Buckets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("unix:/run/finappd/api.sock", Listen(path=Path("/run/finappd/api.sock"))),
        ("127.0.0.1:8790", Listen(host="127.0.0.1", port=8790)),
        ("localhost:1", Listen(host="localhost", port=1)),
        ("[::1]:8790", Listen(host="::1", port=8790)),
    ],
)
def test_listen_addresses(text: str, expected: Listen | None) -> None:
    """``listen`` is a Unix socket, a TCP host:port, or off."""
    assert parse_listen(text) == expected
    if expected is not None:
        assert str(expected) == text


@pytest.mark.parametrize(
    "text", ["unix:api.sock", "8790", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "a b:1"]
)
def test_bad_listen_addresses_are_refused(text: str) -> None:
    """A relative socket, a missing or impossible port is a config error."""
    with pytest.raises(ValueError, match="expected"):
        ApiSettings(listen=text)


def test_default_listen_is_the_runtime_directory_or_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, ``listen`` is $RUNTIME_DIRECTORY/api.sock under systemd, and off elsewhere."""
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    assert ApiSettings().address() is None
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/finappd")
    assert ApiSettings().address() == Listen(path=Path("/run/finappd/api.sock"))
    assert ApiSettings(listen="").address() is None


def progress(run_id: int, ok: int, *, final: bool = False, flow: str = "eod") -> RunProgress:
    """A progress event of run ``run_id`` with ``ok`` tickers done."""
    status = "ok" if final else "running"
    return RunProgress(
        run_id=run_id, flow=flow, trigger="api", status=status, tickers_ok=ok, final=final
    )


def test_board_tracks_runs_in_progress_and_forgets_them_at_their_end() -> None:
    """The board knows each flow's run in progress by flow and id until its final event."""
    board = RunBoard()
    board.publish(progress(7, 0))
    board.publish(progress(8, 0, flow="fx"))
    assert board.running("eod") == progress(7, 0)
    assert board.run(8) == progress(8, 0, flow="fx")
    board.publish(progress(7, 3, final=True))
    assert board.running("eod") is None
    assert board.run(7) is None
    assert board.running("fx") is not None


def test_a_slow_watcher_loses_old_progress_never_the_end() -> None:
    """A watcher that never reads keeps the newest events, the end among them."""
    board = RunBoard()
    with board.watch(1) as queue, board.watch(2) as other:
        for ok in range(WATCH_QUEUE + 10):
            board.publish(progress(1, ok))
        board.publish(progress(1, 99, final=True))
        events = [queue.get_nowait() for _ in range(queue.qsize())]
        assert other.empty()
    assert len(events) == WATCH_QUEUE
    assert events[-1].final
    assert [e.tickers_ok for e in events[:-1]] == list(range(11, WATCH_QUEUE + 10))
    assert repr(board) == "<RunBoard running={} watchers={} events=75>"


def test_buckets_are_cumulative_with_an_infinite_top() -> None:
    """Observations land in the first bucket whose bound they do not exceed."""
    buckets = Buckets((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        buckets.observe(value)
    assert buckets.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert buckets.total == pytest.approx(3.65)
