"""Fault injection for the simulator: the ways real market-data APIs fail, on purpose.

A :class:`FaultPlan` in ``SimConfig.faults`` decides, per request of a provider route,
whether to answer it badly and how. Faults are chosen per symbol (``by_symbol``, for
the first ``times`` requests of that symbol or for all of them) or at random with
probability ``rate`` from ``kinds``; the random choice is a pure function of
``(seed, symbol, n-th request of that symbol)``, so a run sees the same faults
whatever order its requests arrive in.

=================  ==========================================================================
kind               what the client gets
=================  ==========================================================================
``http_500``       500 with a plain-text body (also ``http_502``, ``http_503``)
``html_error``     502 with an HTML gateway error page (a proxy in front of the API)
``hang``           nothing: the answer comes ``hang_seconds`` later (past any client timeout)
``reset``          the TCP connection is aborted before any byte of a response
``429_text``       429 ``Too Many Requests`` as plain text and no ``Retry-After`` (Yahoo)
``429_html``       429 with an HTML page and no ``Retry-After`` (a CDN's block page)
``truncated_json`` 200, JSON content type, the real body cut in half
``malformed_json`` 200, JSON content type, a body that is not JSON
``wrong_shape``    200, valid JSON, but the chart's fields have the wrong types
``empty_body``     200, JSON content type, zero bytes
``html_page``      200 with Yahoo's "Will be right back" outage page
``bad_data``       200, the real chart with bad rows (Yahoo chart only; see below)
=================  ==========================================================================

``bad_data`` rewrites the last seven rows of a Yahoo chart body (it needs at least
ten; shorter ones pass unchanged), counting from the end: -7 close NaN; -6 close
negative; -5 open 0; -4 high and low swapped (high < low); -3 volume 10^15; -2 every
price divided by 100 (a pence/pounds mix-up); -1 open null. It then appends a
duplicate of the last row differing only in volume, and a row dated 30 days in the
future. The earlier rows are untouched.

A provider that is down for a whole run is not a fault of this module: stop the
server (the port then refuses connections).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan", "corrupt_chart", "fault_middleware"]

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

_CONTROL_PREFIX = "/__sim/"
_HTML_OUTAGE = (
    "<!DOCTYPE html><html><head><title>Yahoo</title></head><body>"
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
_WRONG_SHAPE = {"chart": {"result": [{"meta": {}, "timestamp": "soon"}], "error": None}}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


def _symbol_of(request: web.Request) -> str | None:
    """The symbol a provider request is about: path ``{symbol}`` or a ``symbol(s)`` query."""
    symbol = request.match_info.get("symbol") or request.query.get("symbol")
    return symbol or request.query.get("symbols") or None


def corrupt_chart(body: dict[str, Any], now: float) -> dict[str, Any]:
    """A Yahoo chart body with the ``bad_data`` rows of the module docstring (changed in place)."""
    try:
        result = body["chart"]["result"][0]
        stamps: list[int] = result["timestamp"]
        quote: dict[str, list[Any]] = result["indicators"]["quote"][0]
        adj: list[Any] = result["indicators"]["adjclose"][0]["adjclose"]
    except (KeyError, IndexError, TypeError):
        return body
    if len(stamps) < 10:
        return body
    opens, highs, lows, closes, volumes = (
        quote[k] for k in ("open", "high", "low", "close", "volume")
    )
    closes[-7] = float("nan")
    closes[-6] = -abs(closes[-6])
    opens[-5] = 0.0
    highs[-4], lows[-4] = lows[-4], highs[-4]
    volumes[-3] = 10**15
    for column in (opens, highs, lows, closes, adj):
        column[-2] = column[-2] / 100
    opens[-1] = None
    # A duplicate of the last day (yfinance#573: same day, only the volume differs),
    # then a bar a month in the future.
    stamps.append(stamps[-1])
    stamps.append(int(now) + 30 * 86400)
    for column in (opens, highs, lows, closes, adj):
        column.extend([column[-1], column[-1]])
    volumes.extend([volumes[-1] + 1, volumes[-1]])
    return body


async def _bad_data(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not isinstance(response, web.Response) or response.status != 200 or response.body is None:
        return response
    raw = response.body
    if not isinstance(raw, bytes | bytearray):
        return response
    body = corrupt_chart(json.loads(raw), time.time())
    # allow_nan: Yahoo-like clients (json.loads) accept NaN; a real feed may send it.
    return web.Response(
        status=200, text=json.dumps(body, allow_nan=True), content_type="application/json"
    )


async def _inject(kind: str, plan: FaultPlan, request: web.Request, handler: Handler) -> Any:
    """The response (or lack of one) of fault ``kind``."""
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
        data = bytes(raw) if isinstance(raw, bytes | bytearray) else b'{"chart": {"result": []}}'
        return web.Response(
            status=200, body=data[: len(data) // 2], content_type="application/json"
        )
    if kind == "malformed_json":
        return web.Response(
            status=200, text='{"chart": {"result": [}, error: nul', content_type="application/json"
        )
    if kind == "wrong_shape":
        return web.json_response(_WRONG_SHAPE)
    if kind == "empty_body":
        return web.Response(status=200, body=b"", content_type="application/json")
    if kind == "html_page":
        return web.Response(status=200, text=_HTML_OUTAGE, content_type="text/html")
    if kind == "bad_data":
        return await _bad_data(request, handler)
    raise AssertionError(f"unhandled fault kind {kind!r}")  # Fault() validates kinds


def fault_middleware(get_plan: Callable[[], FaultPlan | None]) -> Any:
    """An aiohttp middleware injecting the faults of the plan ``get_plan`` returns now."""

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        plan = get_plan()
        if plan is None or request.path.startswith(_CONTROL_PREFIX):
            return await handler(request)
        symbol = _symbol_of(request)
        kind = plan.choose(symbol) if symbol is not None else None
        if kind is None:
            return await handler(request)
        response: web.StreamResponse = await _inject(kind, plan, request, handler)
        return response

    return faults
