"""The simulator's HTTP server: every API's routes behind latency, limits and counters.

The APIs are the modules of this package that declare one
(:func:`~finappd.sim.routes.discover`). Every request outside ``/__sim/`` passes one
middleware: counted, admitted or refused with a plain-text 429
(:class:`~finappd.sim.limits.Gate`), delayed by ``config.latency``, answered by its
API's route (:mod:`~finappd.sim.routes`: faults, key, the API's window, the payload),
and its status counted. ``GET /__sim/stats`` shows the
counters, ``POST /__sim/reset`` zeroes them, ``POST /__sim/config`` changes
latency and limits of a running server (for the ``finappd sim`` CLI).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

import structlog
from aiohttp import web

from finappd.sim.config import Clocks, SimConfig, SimStats
from finappd.sim.faults import FaultPlan
from finappd.sim.limits import Gate
from finappd.sim.routes import ServedApi, discover

__all__ = ["SimServer", "serve"]

_CONTROL_PREFIX = "/__sim/"
_TUNABLE = ("latency", "max_concurrency", "retry_after", "seed")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = structlog.get_logger("finappd.sim")


class SimServer:
    """A simulated market-data API on a local port; ``async with SimServer() as sim: sim.url``."""

    def __init__(
        self,
        config: SimConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clocks: Clocks | None = None,
    ) -> None:
        self.config = config if config is not None else SimConfig()
        self.host = host
        self.port = port
        self.stats = SimStats()
        self.clocks = clocks if clocks is not None else Clocks()
        self._gate = Gate(self.stats)
        self._apis = [
            ServedApi(api, lambda: self.config, self.stats, self.clocks) for api in discover()
        ]
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<SimServer url={self.url or 'stopped'} requests={s.requests} served={s.served} "
            f"in_flight={s.in_flight} peak_in_flight={s.peak_in_flight} "
            f"rejected_429={s.rejected_429} not_found={s.not_found}>"
        )

    def reset(self) -> None:
        """Zero the counters and the rate windows (what ``POST /__sim/reset`` does)."""
        self.stats.reset()
        self._gate.reset()
        for api in self._apis:
            api.reset()

    def make_app(self) -> web.Application:
        """The aiohttp application: every API's routes behind the limits, plus ``/__sim/``."""
        app = web.Application(middlewares=[self._middleware])
        for api in self._apis:
            app.add_routes(api.route_defs())
        app.add_routes(
            [
                web.get("/__sim/stats", self._get_stats),
                web.post("/__sim/reset", self._post_reset),
                web.post("/__sim/config", self._post_config),
            ]
        )
        return app

    async def start(self) -> str:
        """Listen and return the base URL, e.g. ``http://127.0.0.1:43567``."""
        if self._runner is not None:
            raise RuntimeError(f"{self!r} is already started")
        # access_log=None: one line per request would flood at 20k requests.
        runner = web.AppRunner(
            self.make_app(), access_log=None, shutdown_timeout=0.5, handle_signals=False
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        self.url = f"http://{self.host}:{port}"
        return self.url

    async def stop(self) -> None:
        """Close the listener and open connections (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(_CONTROL_PREFIX):
            return await handler(request)
        stats = self.stats
        config = self.config
        stats.requests += 1
        retry_after = self._gate.admit(config, self.clocks.monotonic())
        if retry_after is not None:
            stats.record(429)
            return web.Response(
                status=429, text="Too Many Requests", headers={"Retry-After": str(retry_after)}
            )
        status = 500
        try:
            if config.latency > 0:
                await asyncio.sleep(config.latency)
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self._gate.release()
            stats.record(status)

    async def _get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_json())

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response(self.stats.as_json())

    async def _post_config(self, request: web.Request) -> web.Response:
        try:
            changes: Any = await request.json()
            if not isinstance(changes, dict):
                raise TypeError("expected a JSON object")
            updates = {k: v for k, v in changes.items() if k in _TUNABLE}
            if "faults" in changes:
                faults = changes["faults"]
                updates["faults"] = None if faults is None else FaultPlan.from_json(faults)
            if "rate_limit" in changes:
                limit = changes["rate_limit"]
                updates["rate_limit"] = None if limit is None else (int(limit[0]), float(limit[1]))
            unknown = set(changes) - set(updates)
            if unknown:
                raise ValueError(f"not tunable: {sorted(unknown)}")
            self.config = replace(self.config, **updates)
        except (ValueError, TypeError, IndexError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({k: getattr(self.config, k) for k in (*_TUNABLE, "rate_limit")})


async def serve(config: SimConfig, host: str, port: int, stop: asyncio.Event) -> None:
    """Run a :class:`SimServer` on ``host:port`` until ``stop`` is set."""
    server = SimServer(config, host, port)
    url = await server.start()
    log.info("sim.listening", url=url)
    try:
        await stop.wait()
    finally:
        await server.stop()
        log.info("sim.stopped", url=url, **server.stats.as_json())
