"""systemd integration without a dependency: sd_notify over ``$NOTIFY_SOCKET`` (READY,
RELOADING, STATUS, WATCHDOG, STOPPING) and ``$JOURNAL_STREAM`` detection.

Every function is a no-op when the daemon is not run by systemd (no socket set),
so the same code runs under systemd, in a terminal and in tests.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import TextIO

import structlog

__all__ = [
    "STATUS_MAX",
    "is_journal_stream",
    "notify",
    "reloading_fields",
    "watchdog_interval",
    "watchdog_loop",
]

#: ``systemctl status`` shows ``STATUS=`` on one line of the terminal: keep it short.
STATUS_MAX = 200

log = structlog.get_logger(__name__)


def notify(*fields: str) -> bool:
    """Send ``fields`` (e.g. ``"READY=1"``, ``"STATUS=…"``) to systemd; False when unset."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    payload = "\n".join(fields).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(1.0)
            sock.connect(address)
            sock.sendall(payload)
    except OSError as exc:
        log.warning("systemd.notify_failed", error=str(exc), fields=list(fields))
        return False
    return True


def reloading_fields() -> tuple[str, str]:
    """``RELOADING=1`` with the ``MONOTONIC_USEC=`` that newer systemd versions require."""
    return "RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"


def is_journal_stream(stream: TextIO) -> bool:
    """True when ``stream`` is the journal: its device and inode match ``$JOURNAL_STREAM``."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = expected.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or no real file (e.g. StringIO)
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        micros = int(usec)
    except ValueError:
        return None
    return micros / 2_000_000 if micros > 0 else None


async def watchdog_loop(interval: float) -> None:
    """Ping the watchdog from the event loop itself, so a stalled loop stops the pings."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
