"""The API's endpoints, and the middleware that guards them.

- ``GET /healthz``: 200 ``{"status": "ok"}`` while the event loop and the scheduler live
  and no flow is stale by the ``status --check`` rule; else 503 naming the stale flows.
- ``GET /metrics``: Prometheus text (:mod:`finappd.api.prom`).
- ``GET /status``: what ``finappd status --json`` prints.
- ``POST /flows/{name}/runs``: start a run now (trigger ``api``), or answer with the run
  of that flow already in progress; 202 ``{"run_id": N}``.
- ``GET /runs/{id}``: the run's row and its failures by kind.
- ``GET /runs/{id}/events``: its progress as server-sent events (:mod:`finappd.api.sse`).

On TCP every path but ``/healthz`` and ``/metrics`` needs ``Authorization: Bearer
<token>``; a missing or wrong one is 401, logged without the token. Every error is JSON
``{"error": ...}`` with a 4xx or 5xx status, never a traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from aiohttp import web

from finappd.api import sse
from finappd.api.control import Control
from finappd.config import Settings
from finappd.errors import ConfigError, StoreError
from finappd.status import flow_health, status_report
from finappd.store import Store
from finappd.store.backend import database_exists, open_readonly

__all__ = ["OPEN_PATHS", "build_app"]

log = structlog.get_logger(__name__)

#: Paths served without a token on TCP (monitoring scrapes them).
OPEN_PATHS = frozenset({"/healthz", "/metrics"})

CONTROL = web.AppKey("control", Control)
TCP = web.AppKey("tcp", bool)

_T = TypeVar("_T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str, **extra: Any) -> web.Response:
    """A JSON error answer."""
    return web.json_response({"error": message, **extra}, status=status)


def _authorized(request: web.Request, settings: Settings) -> bool:
    token = settings.api.token
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token is None or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode())


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the token on TCP; turn every failure into a JSON error."""
    control = request.app[CONTROL]
    guarded = request.app[TCP] and request.path not in OPEN_PATHS
    if guarded and not _authorized(request, control.settings):
        log.warning(
            "api.unauthorized",
            method=request.method,
            path=request.path,
            remote=request.remote,
            reason="no token configured"
            if control.settings.api.token is None
            else "missing or wrong bearer token",
        )
        response = error(401, "missing or wrong bearer token")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, exc.reason)
    except StoreError as exc:
        log.error("api.store_failed", path=request.path, error=str(exc))
        return error(503, f"the database cannot be read: {exc}")
    except TimeoutError:
        return error(503, "the database did not answer in time")
    except ConnectionResetError:
        raise  # the client left (an event stream closed by its reader): nothing to answer
    except Exception:  # a bug: logged with its traceback, answered without it
        log.exception("api.crashed", method=request.method, path=request.path)
        return error(500, "internal error (logged as api.crashed)")


async def _read(request: web.Request, read: Callable[[Store], _T]) -> _T:
    """``read(store)`` over a read-only connection, in a thread, within the API's timeout."""
    settings = request.app[CONTROL].settings

    def work() -> _T:
        store = open_readonly(settings.store)
        try:
            return read(store)
        finally:
            store.close()

    async with asyncio.timeout(settings.api.timeout.total_seconds()):
        return await asyncio.to_thread(work)


async def healthz(request: web.Request) -> web.Response:
    """200 while alive and nothing is stale; 503 naming the stale flows."""
    control = request.app[CONTROL]
    if not control.alive():
        return web.json_response({"status": "stopping"}, status=503)
    settings = control.settings
    if not database_exists(settings.store):
        return web.json_response({"status": "stale", "flows": {}}, status=503)
    health = await _read(request, lambda store: flow_health(settings, store, datetime.now(UTC)))
    stale = {h.flow: h.problem for h in health if h.problem is not None}
    if stale:
        return web.json_response({"status": "stale", "flows": stale}, status=503)
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus exposition."""
    # prometheus_client on the first scrape: it is a quarter of the API's start-up cost.
    from finappd.api.prom import CONTENT_TYPE, FlowFigures, exposition

    control = request.app[CONTROL]
    figures = await _read(request, lambda s: FlowFigures(s.run_totals(), s.last_good_runs()))
    body = exposition(figures, control.live_providers())
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


async def status(request: web.Request) -> web.Response:
    """``finappd status --json``."""
    settings = request.app[CONTROL].settings
    report = await _read(request, lambda s: status_report(settings, s, datetime.now(UTC)))
    return web.json_response(text=json.dumps(report, default=str))


async def start_run(request: web.Request) -> web.Response:
    """Start a run of ``{name}`` (or find the one in progress); 202 with its id."""
    control = request.app[CONTROL]
    name = request.match_info["name"]
    if request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            return error(400, "the body is not JSON")
        if not isinstance(body, dict) or body:
            return error(400, "the body must be empty or an empty JSON object")
    try:
        control.settings.flow(name)
    except ConfigError as exc:
        return error(404, exc.problem)
    run_id = await control.trigger_now(name)
    if run_id is None:
        return error(503, f"flow {name!r} could not start (the daemon is stopping?)")
    return web.json_response({"run_id": run_id, "flow": name}, status=202)


def _run_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit():
        raise web.HTTPBadRequest(reason=f"a run id is a number, got {text!r}")
    return int(text)


def _failures(store: Store, run_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _symbol, _provider, kind, _message in store.errors_for_run(run_id):
        counts[kind] = counts.get(kind, 0) + 1
    return counts


async def get_run(request: web.Request) -> web.Response:
    """The run's row and its failure counts by kind."""
    run_id = _run_id(request)
    row, failures = await _read(request, lambda s: (s.run(run_id), _failures(s, run_id)))
    if row is None:
        return error(404, f"no run with id {run_id}")
    data = sse.row_dict(row) | {"failures": failures}
    return web.json_response(data)


async def run_events(request: web.Request) -> web.StreamResponse:
    """The run's progress as server-sent events, closing after its end."""
    control = request.app[CONTROL]
    run_id = _run_id(request)
    with control.board.watch(run_id) as queue:
        live = control.board.run(run_id)
        if live is None:  # not in progress here: what its row says
            row, failures = await _read(request, lambda s: (s.run(run_id), _failures(s, run_id)))
            if row is None:
                return error(404, f"no run with id {run_id}")
            return await sse.from_row(request, row, failures)
        return await sse.stream(request, live, queue)


def build_app(control: Control, *, tcp: bool) -> web.Application:
    """The aiohttp application serving ``control``."""
    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app[CONTROL] = control
    app[TCP] = tcp
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/status", status)
    app.router.add_post("/flows/{name}/runs", start_run)
    app.router.add_get("/runs/{id}", get_run)
    app.router.add_get("/runs/{id}/events", run_events)
    return app
