"""sd_notify over ``$NOTIFY_SOCKET``: READY, STATUS, WATCHDOG, STOPPING; no dependency.

Every function is a no-op when the daemon is not run by systemd (no socket set),
so the same code runs under systemd, in a terminal and in tests.
"""

from __future__ import annotations

import asyncio
import os
import socket

import structlog

__all__ = ["notify", "watchdog_interval", "watchdog_loop"]

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
