"""A client of a running daemon's API, for ``finappd trigger`` and for apps (the Reflex example).

::

    async with ApiClient(settings.api) as api:
        run_id = await api.trigger("eod")
        async for event in api.events(run_id):
            print(event["tickers_ok"], "/", event["tickers_total"])

Connecting to no daemon (no socket file, connection refused) raises
:class:`DaemonUnreachable`, so a caller can fall back to running the flow itself; any
answer that is not a success raises :class:`ApiError` with the server's message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import aiohttp
import yarl

from finappd.config import ApiSettings, Listen

__all__ = ["ApiClient", "ApiError", "DaemonUnreachable"]


class ApiError(Exception):
    """The daemon answered with an error (``status``, its message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class DaemonUnreachable(Exception):
    """No daemon listens where ``[api] listen`` says (or the API is off)."""


class ApiClient:
    """Talks to the daemon at ``settings``' address, with its token and timeout."""

    def __init__(self, settings: ApiSettings, address: Listen | None = None) -> None:
        self.settings = settings
        self.address = address or settings.address()
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"<ApiClient address={self.address} open={self._session is not None}>"

    async def __aenter__(self) -> Self:
        if self.address is None:
            raise DaemonUnreachable('the API is off ([api] listen = "")')
        connector: aiohttp.BaseConnector | None = None
        if self.address.path is not None:
            connector = aiohttp.UnixConnector(path=str(self.address.path))
        headers = {}
        if self.settings.token is not None:
            headers["Authorization"] = f"Bearer {self.settings.token.get_secret_value()}"
        seconds = self.settings.timeout.total_seconds()
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            # sock_read, not total: an event stream lasts as long as its run (keep-alives
            # arrive every 15 s).
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=60.0),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _url(self, path: str) -> yarl.URL:
        assert self.address is not None
        if self.address.path is not None:
            return yarl.URL(f"http://localhost{path}")  # the host is not used on a socket
        return yarl.URL(f"http://{self.address}{path}")

    async def _json(self, method: str, path: str) -> Any:
        assert self._session is not None, "use `async with ApiClient(...)`"
        try:
            async with self._session.request(
                method,
                self._url(path),
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout.total_seconds()),
            ) as response:
                data = await response.json(content_type=None)
                if response.status >= 400:
                    raise ApiError(response.status, str(data.get("error", data)))
                return data
        except (aiohttp.ClientConnectorError, FileNotFoundError) as exc:
            raise DaemonUnreachable(f"no daemon at {self.address}: {exc.strerror}") from exc

    async def trigger(self, flow: str) -> int:
        """Start ``flow`` now (or join its run in progress); the run's id."""
        data = await self._json("POST", f"/flows/{flow}/runs")
        return int(data["run_id"])

    async def events(self, run_id: int) -> AsyncIterator[dict[str, Any]]:
        """The run's progress events (server-sent), the last one ``final`` if it ended."""
        assert self._session is not None, "use `async with ApiClient(...)`"
        try:
            async with self._session.get(self._url(f"/runs/{run_id}/events")) as response:
                if response.status >= 400:
                    data = await response.json(content_type=None)
                    raise ApiError(response.status, str(data.get("error", data)))
                async for raw in response.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("data: "):
                        yield json.loads(line.removeprefix("data: "))
        except (aiohttp.ClientConnectorError, FileNotFoundError) as exc:
            raise DaemonUnreachable(f"no daemon at {self.address}: {exc.strerror}") from exc
