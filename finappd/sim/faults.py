"""Fault injection for the simulator: the ways real market-data APIs fail, on purpose.

A :class:`FaultPlan` in ``SimConfig.faults`` decides, per request of an API route,
whether to answer it badly and how (the route helper, :mod:`finappd.sim.routes`, asks
it first). Faults are chosen per symbol (``by_symbol``, for the first ``times``
requests of that symbol or for all of them) or at random with probability ``rate``
from ``kinds``; the random choice is a pure function of ``(seed, symbol, n-th request
of that symbol)``, so a run sees the same faults whatever order its requests arrive in.

=================  ==========================================================================
kind               what the client gets
=================  ==========================================================================
``http_500``       500 with a plain-text body (also ``http_502``, ``http_503``)
``html_error``     502 with an HTML gateway error page (a proxy in front of the API)
``hang``           nothing: the answer comes ``hang_seconds`` later (past any client timeout)
``reset``          the TCP connection is aborted before any byte of a response
``429_text``       429 ``Too Many Requests`` as plain text and no ``Retry-After``
``429_html``       429 with an HTML page and no ``Retry-After`` (a CDN's block page)
``truncated_json`` 200, JSON content type, the real body cut in half
``malformed_json`` 200, JSON content type, a body that is not JSON
``wrong_shape``    200, valid JSON, but the API's fields have the wrong types
``empty_body``     200, JSON content type, zero bytes
``html_page``      200 with the API's HTML outage page
``bad_data``       200, the real body with bad rows (APIs that declare how; others unchanged)
=================  ==========================================================================

What ``wrong_shape``, ``html_page`` and ``bad_data`` look like is the API's wire fact:
its module declares :class:`FaultShapes` (and lists its ``bad_data`` rows).

A provider that is down for a whole run is not a fault of this module: stop the
server (the port then refuses connections).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan", "FaultShapes", "inject"]

FAULT_KINDS = (
    "http_500",
    "http_502",
    "http_503",
    "html_error",
    "hang",
    "reset",
    "429_text",
    "429_html",
    "truncated_json",
    "malformed_json",
    "wrong_shape",
    "empty_body",
    "html_page",
    "bad_data",
)

_HTML_OUTAGE = (
    "<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>"
    "<h1>Will be right back...</h1><p>Thank you for your patience.</p></body></html>"
)
_HTML_GATEWAY = (
    "<html><head><title>502 Bad Gateway</title></head><body>"
    "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)
_HTML_429 = (
    "<html><head><title>429 Too Many Requests</title></head><body>"
    "<h1>Too Many Requests</h1><p>Please slow down.</p></body></html>"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Body = Any


@dataclass(frozen=True, slots=True)
class FaultShapes:
    """What an API's broken answers look like: the faults whose body is the API's own."""

    wrong_shape: str = '{"data": {"result": "soon"}}'
    """The JSON text of ``wrong_shape``: valid JSON, the API's fields with the wrong types."""
    outage_page: str = _HTML_OUTAGE
    """The HTML page of ``html_page``."""
    corrupt: Callable[[Body, float], Body] | None = None
    """``bad_data``: the decoded real body and now → the body with bad rows (None: unchanged)."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault ``kind``, for the first ``times`` requests of a symbol (``None``: all)."""

    kind: str
    times: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(FAULT_KINDS)})")


@dataclass(slots=True)
class FaultPlan:
    """Which requests fail and how; counts what it injected in ``injected``."""

    by_symbol: Mapping[str, Fault] = field(default_factory=dict)
    """Faults for named symbols; these win over the random ones."""
    rate: float = 0.0
    """Probability that any other request gets a fault drawn from ``kinds``."""
    kinds: tuple[str, ...] = tuple(k for k in FAULT_KINDS if k != "bad_data")
    """The kinds the random faults are drawn from (all but ``bad_data`` unless given)."""
    seed: int = 0
    """Seeds the random choice (with the symbol and its request number)."""
    hang_seconds: float = 3600.0
    """How long a ``hang`` holds the request before answering."""
    requests: dict[str, int] = field(default_factory=dict)
    """Requests seen per symbol."""
    injected: dict[str, int] = field(default_factory=dict)
    """Faults injected per kind."""

    def __post_init__(self) -> None:
        for kind in self.kinds:
            Fault(kind)  # validates the name
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate}")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultPlan:
        """A plan from JSON: ``{"by_symbol": {"AAPL": "reset"|{"kind":…,"times":…}}, …}``."""
        by_symbol: dict[str, Fault] = {}
        for symbol, spec in dict(data.get("by_symbol") or {}).items():
            by_symbol[str(symbol)] = (
                Fault(spec)
                if isinstance(spec, str)
                else Fault(spec.get("kind", ""), spec.get("times"))
            )
        return cls(
            by_symbol=by_symbol,
            rate=float(data.get("rate", 0.0)),
            kinds=tuple(data.get("kinds", cls().kinds)),
            seed=int(data.get("seed", 0)),
            hang_seconds=float(data.get("hang_seconds", 3600.0)),
        )

    def choose(self, symbol: str) -> str | None:
        """Count one request of ``symbol`` and return the fault kind to inject, if any."""
        n = self.requests.get(symbol, 0)
        self.requests[symbol] = n + 1
        kind: str | None = None
        if (fault := self.by_symbol.get(symbol)) is not None:
            if fault.times is None or n < fault.times:
                kind = fault.kind
        elif self.rate > 0 and self.kinds:
            # Seeded by text: deterministic across processes (str seeds hash with SHA-512).
            draw = random.Random(f"{self.seed}:{symbol}:{n}")
            if draw.random() < self.rate:
                kind = draw.choice(self.kinds)
        if kind is not None:
            self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


async def _bad_data(
    shapes: FaultShapes, request: web.Request, handler: Handler, now: float
) -> web.StreamResponse:
    response = await handler(request)
    if shapes.corrupt is None or not isinstance(response, web.Response):
        return response
    raw = response.body
    if response.status != 200 or not isinstance(raw, bytes | bytearray):
        return response
    body = shapes.corrupt(json.loads(raw), now)
    # allow_nan: clients decoding with json.loads accept NaN; a real feed may send it.
    return web.Response(
        status=200, text=json.dumps(body, allow_nan=True), content_type="application/json"
    )


async def inject(
    kind: str,
    plan: FaultPlan,
    shapes: FaultShapes,
    request: web.Request,
    handler: Handler,
    now: float,
) -> web.StreamResponse:
    """The response (or lack of one) of fault ``kind``; ``handler`` gives the real answer."""
    if kind.startswith("http_5"):
        status = int(kind.removeprefix("http_"))
        return web.Response(status=status, text=f"{status} Server Error")
    if kind == "html_error":
        return web.Response(status=502, text=_HTML_GATEWAY, content_type="text/html")
    if kind == "hang":
        await asyncio.sleep(plan.hang_seconds)
        return await handler(request)
    if kind == "reset":
        if request.transport is not None:
            request.transport.abort()
        # Nothing can be sent any more; aiohttp drops the response of a closed connection.
        return web.Response(status=500)
    if kind == "429_text":
        return web.Response(status=429, text="Too Many Requests")
    if kind == "429_html":
        return web.Response(status=429, text=_HTML_429, content_type="text/html")
    if kind == "truncated_json":
        response = await handler(request)
        raw = response.body if isinstance(response, web.Response) else None
        data = bytes(raw) if isinstance(raw, bytes | bytearray) else shapes.wrong_shape.encode()
        return web.Response(
            status=200, body=data[: len(data) // 2], content_type="application/json"
        )
    if kind == "malformed_json":
        return web.Response(
            status=200, text='{"chart": {"result": [}, error: nul', content_type="application/json"
        )
    if kind == "wrong_shape":
        return web.Response(status=200, text=shapes.wrong_shape, content_type="application/json")
    if kind == "empty_body":
        return web.Response(status=200, body=b"", content_type="application/json")
    if kind == "html_page":
        return web.Response(status=200, text=shapes.outage_page, content_type="text/html")
    if kind == "bad_data":
        return await _bad_data(shapes, request, handler, now)
    raise AssertionError(f"unhandled fault kind {kind!r}")  # Fault() validates kinds
