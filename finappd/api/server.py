"""The API server's life: bind where ``[api] listen`` says (or nowhere), serve, close.

A Unix socket is made ``0660`` (owner and group: the directory's permissions decide who
reaches it); a socket file left by a crashed daemon is replaced, a live one is not. A
failure to bind is logged and the daemon goes on without its API: fetching data
matters more than being watched.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import structlog
from aiohttp import web

from finappd.api.control import Control
from finappd.api.routes import build_app
from finappd.config import Listen

__all__ = ["ApiServer"]

log = structlog.get_logger(__name__)

#: Seconds open requests (event streams) get to finish when the server closes.
SHUTDOWN_S = 2.0


def _in_use(path: Path) -> bool:
    """Whether a process accepts connections on the Unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class ApiServer:
    """The daemon's HTTP API on a Unix socket or a TCP port."""

    def __init__(self, control: Control) -> None:
        self.control = control
        self.address: Listen | None = None
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        return f"<ApiServer address={self.address} serving={self._runner is not None}>"

    async def start(self) -> None:
        """Listen where the config says; log where (or why not)."""
        address = self.control.settings.api.address()
        if address is None:
            log.info("api.off")
            return
        runner = web.AppRunner(
            build_app(self.control, tcp=address.tcp),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_S,
        )
        await runner.setup()
        try:
            await self._bind(runner, address)
        except OSError as exc:
            await runner.cleanup()
            log.error("api.failed", address=str(address), error=f"{type(exc).__name__}: {exc}")
            return
        self._runner, self.address = runner, address
        if address.tcp and self.control.settings.api.token is None:
            log.warning(
                "api.no_token",
                address=str(address),
                reason="no FINAPPD_API__TOKEN or api_token credential: only /healthz and "
                "/metrics will answer",
            )
        log.info("api.listening", address=str(address), auth="token" if address.tcp else "socket")

    async def _bind(self, runner: web.AppRunner, address: Listen) -> None:
        site: web.BaseSite
        if address.path is None:
            site = web.TCPSite(runner, address.host, address.port)
            await site.start()
            return
        path = address.path
        if path.is_socket() and not _in_use(path):
            path.unlink()  # left by a daemon that died
        site = web.UnixSite(runner, str(path))
        await site.start()
        os.chmod(path, 0o660)

    async def stop(self) -> None:
        """Close the server (open event streams get :data:`SHUTDOWN_S`)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await runner.cleanup()
        if self.address is not None and self.address.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.address.path.unlink()
        log.info("api.closed")
