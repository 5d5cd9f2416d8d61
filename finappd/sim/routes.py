"""What every simulated API's routes share: faults, the key check and the API's own rate window.

Each API module of this package declares its wire facts as one :class:`SimApi` named
``API``: the paths it serves and the payload of each, how a request carries its key
and how the API turns away a missing or refused one, how it answers past its own
window (``SimConfig.provider_limits[name]``), and what its broken answers look like
(:class:`~finappd.sim.faults.FaultShapes`). The server finds those modules itself
(:func:`discover`), so a new API is one new module here and no edit elsewhere.

:class:`ServedApi` wraps every handler in the common part, in this order:

1. the fault the plan (``SimConfig.faults``) chooses for the route's symbol, if any;
2. the key check, when the API checks keys before counting (``key_before_window``);
3. the API's window: past it, the API's rate-limit answer (counted per API in
   ``SimStats.api_refused``, whatever its shape);
4. the key check: the API's own refusals (``refuse``), then no key (``Keys.missing``,
   unless keyless requests are served) and :data:`REFUSED_KEY` (``Keys.refused``);
5. the handler: ``(request, config, now) -> response``, ``now`` in epoch seconds.

Every API treats a symbol starting with :data:`UNKNOWN_PREFIX`, or one listed in
``SimConfig.unknown_symbols``, as unknown (:func:`unknown`) and answers it its own way.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from finappd.sim.config import Clocks, SimConfig, SimStats
from finappd.sim.faults import FaultShapes, inject
from finappd.sim.limits import SlidingWindow

__all__ = [
    "REFUSED_KEY",
    "UNKNOWN_PREFIX",
    "Keys",
    "Route",
    "ServedApi",
    "SimApi",
    "discover",
    "path_param",
    "query_param",
    "unknown",
]

#: The key every simulated API refuses (as a revoked or mistyped key).
REFUSED_KEY = "BADKEY"
#: Symbols starting with this are unknown to every simulated API.
UNKNOWN_PREFIX = "ZZZ"

Answer = Callable[[], web.StreamResponse]
Handler = Callable[[web.Request, SimConfig, float], web.StreamResponse]
SymbolOf = Callable[[web.Request], str | None]


def unknown(config: SimConfig, *names: str, prefix: str = UNKNOWN_PREFIX) -> bool:
    """Whether a symbol known by ``names`` (as sent, canonical …) is unknown to the simulator."""
    listed = not config.unknown_symbols.isdisjoint(names)
    return listed or any(name.startswith(prefix) for name in names)


def path_param(name: str) -> SymbolOf:
    """The symbol of a route whose path holds it as ``{name}``."""
    return lambda request: request.match_info.get(name)


def query_param(*names: str) -> SymbolOf:
    """The symbol of a route whose query holds it, in the first of ``names`` present."""

    def symbol(request: web.Request) -> str | None:
        return next((request.query[n] for n in names if request.query.get(n)), None)

    return symbol


def _no_symbol(request: web.Request) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Route:
    """One path of an API: its handler, and the symbol a request is about (for faults)."""

    path: str
    answer: Handler
    symbol: SymbolOf = _no_symbol
    guarded: bool = True
    """False: served as is, outside the API's window and key check (e.g. a redirect)."""


@dataclass(frozen=True, slots=True)
class Keys:
    """How an API takes its key and how it turns one away."""

    read: Callable[[web.Request], str]
    """The key a request carries (``""`` when none)."""
    refused: Answer
    """The answer to :data:`REFUSED_KEY`."""
    missing: Answer | None = None
    """The answer to a request without a key; None: such requests are served."""


@dataclass(frozen=True, slots=True)
class SimApi:
    """One simulated API's wire facts; its module names it ``API``."""

    name: str
    """The provider kind it stands for, its key in ``SimConfig.provider_limits``."""
    base_path: str
    """Where a provider's ``base_url`` points, under the server's URL (``""``: the root)."""
    routes: tuple[Route, ...]
    rate_limited: Callable[[tuple[int, float], int], web.StreamResponse]
    """The answer past the API's window: ``(limit, refusals in a row)`` → response."""
    keys: Keys | None = None
    """None: the API takes no key."""
    refuse: Callable[[web.Request], web.StreamResponse | None] | None = None
    """Other refusals at the key check (a wrong host's key header, a bot wall …)."""
    key_before_window: bool = False
    """Whether the key is checked before the request counts in the window."""
    faults: FaultShapes = field(default_factory=FaultShapes)


class ServedApi:
    """One API on one server: its window, and aiohttp routes around its handlers."""

    def __init__(
        self,
        api: SimApi,
        get_config: Callable[[], SimConfig],
        stats: SimStats,
        clocks: Clocks,
    ) -> None:
        self.api = api
        self._get_config = get_config
        self._stats = stats
        self._clocks = clocks
        self._window = SlidingWindow()
        self._strikes = 0

    def reset(self) -> None:
        """Forget the API's window."""
        self._window.clear()
        self._strikes = 0

    def route_defs(self) -> list[web.RouteDef]:
        """The API's routes, each behind faults, the key check and the window."""
        return [web.get(route.path, self._handler(route)) for route in self.api.routes]

    def _key_refusal(self, request: web.Request) -> web.StreamResponse | None:
        api = self.api
        if api.refuse is not None and (refused := api.refuse(request)) is not None:
            return refused
        if api.keys is None:
            return None
        key = api.keys.read(request)
        if not key and api.keys.missing is not None:
            return api.keys.missing()
        if key == REFUSED_KEY:
            return api.keys.refused()
        return None

    def _refusal(self, request: web.Request, config: SimConfig) -> web.StreamResponse | None:
        api = self.api
        if api.key_before_window and (refused := self._key_refusal(request)) is not None:
            return refused
        limit = config.provider_limits.get(api.name)
        if limit is not None:
            if self._window.admit(limit, self._clocks.monotonic()) is not None:
                self._strikes += 1
                self._stats.api_refused[api.name] = self._stats.api_refused.get(api.name, 0) + 1
                return api.rate_limited(limit, self._strikes)
            self._strikes = 0
        return None if api.key_before_window else self._key_refusal(request)

    def _handler(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def answer(request: web.Request) -> web.StreamResponse:
            config = self._get_config()
            if route.guarded and (refused := self._refusal(request, config)) is not None:
                return refused
            return route.answer(request, config, self._clocks.wall())

        async def handle(request: web.Request) -> web.StreamResponse:
            plan = self._get_config().faults
            symbol = route.symbol(request) if plan is not None else None
            kind = plan.choose(symbol) if plan is not None and symbol else None
            if plan is None or kind is None:
                return await answer(request)
            return await inject(kind, plan, self.api.faults, request, answer, self._clocks.wall())

        return handle


def discover() -> tuple[SimApi, ...]:
    """The :class:`SimApi` of every module of ``finappd.sim`` that declares one, by name."""
    package = importlib.import_module("finappd.sim")
    apis: list[SimApi] = []
    for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
        api = getattr(importlib.import_module(info.name), "API", None)
        if isinstance(api, SimApi):
            apis.append(api)
    return tuple(sorted(apis, key=lambda api: api.name))
