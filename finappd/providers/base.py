"""The provider contract, written once; the politeness is the client each provider owns.

A provider module declares what it is (``kind``, ``capabilities``, ``default_base_url``,
``default_limits``, ``requires_key``, ``headers``), how it authenticates
(``auth_headers`` or, only where the API insists, ``auth_params``), how flow tickers
map to its symbols (``map_symbol``), what its responses mean (``classify``) and
implements the capability methods it declares. It never pauses, parks or retries:
every request goes through its polite client, ``await self.http.get(url, params=...,
symbol=...)`` (:class:`~finappd.providers._polite.PoliteClient`), which per provider
instance (shared by every flow in the daemon):

- fails fast, without a request, while the provider is disabled (its key was refused
  this run), parked (its daily/monthly quota is spent until the reset) or its circuit
  breaker is open;
- waits out a provider-wide pause after a 429 (``Retry-After`` when given, else
  exponential backoff with jitter);
- reads the quota ledger's day once (before the semaphore), holds the semaphore
  (``max_concurrency``), counts the request in the ledger in memory (persisted behind,
  never awaited, see :mod:`~finappd.providers.quota`), waits for every rate window
  (:class:`~finappd.providers.limits.RateWindows`), then sends with an explicit timeout;
- classifies the response and acts on the :class:`Verdict`: OK/EMPTY return, NOT_FOUND,
  PLAN_GATED and BAD raise, AUTH disables, QUOTA_EXHAUSTED parks, RATE_LIMITED pauses
  and retries, TRANSIENT (and timeouts, connection errors) retries with backoff and
  feeds the circuit breaker (:mod:`~finappd.providers.breaker`).

Every message carries the redacted URL only (:func:`redact_url`); keys never reach a
log line, an exception or the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, ClassVar

import aiohttp

from finappd.config import ProviderSettings
from finappd.errors import AuthError, BadResponseError, SymbolNotFoundError
from finappd.providers._admission import Sleep
from finappd.providers._http import Response, make_session, parse_retry_after, redact_url
from finappd.providers._outcome import classify_status
from finappd.providers._polite import PoliteClient
from finappd.providers.limits import Limits, effective_limits
from finappd.providers.quota import QuotaLedger, UsageBackend
from finappd.providers.verdicts import Capability, Classified, Verdict
from finappd.records import Bar, Dividend, FxRate, Quote, Split

__all__ = [
    "BaseProvider",
    "Capability",
    "Classified",
    "Limits",
    "Response",
    "Verdict",
    "classify_status",
    "make_session",
    "parse_retry_after",
    "redact_url",
]


class BaseProvider:
    """A market-data API: what it serves, how its answers read; ``http`` sends politely."""

    #: The provider kind (``providers.<name>.kind``), e.g. ``"yahoo"``.
    kind: ClassVar[str] = ""
    #: What this API can serve; flows only call the matching methods.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: Whether ``api_key`` must be configured.
    requires_key: ClassVar[bool] = False
    #: Longest ``start..end`` span, in days, one history request may ask for (a backfill
    #: splits its range into chunks that fit); None: any span in one request.
    max_range_days: ClassVar[int | None] = None
    #: Used when the config gives no ``base_url``.
    default_base_url: ClassVar[str] = ""
    #: Documented free-tier limits (PROVIDERS.md); the config overrides each one.
    default_limits: ClassVar[Limits] = Limits()
    #: Sent with every request of this provider, over the session's defaults.
    headers: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        name: str,
        settings: ProviderSettings,
        session: aiohttp.ClientSession,
        *,
        usage: UsageBackend | None = None,
        ledger: QuotaLedger | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self.settings = settings
        self.base_url = (settings.base_url or self.default_base_url).rstrip("/")
        if ledger is None:
            ledger = QuotaLedger(name, daily=None, monthly=None, backend=usage)
        self.http = PoliteClient(
            name,
            settings,
            session,
            limits=effective_limits(self.default_limits, settings),
            ledger=ledger,
            classify=self.classify,
            headers=self.headers,
            auth_headers=self.auth_headers,
            auth_params=self.auth_params,
            clock=clock,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.http.describe()}>"

    @property
    def ledger(self) -> QuotaLedger:
        """The quota ledger this provider counts its requests in."""
        return self.http.ledger

    def new_run(self) -> None:
        """Forget a refused key: each run gives the provider one fresh try."""
        self.http.refusals.new_run()

    def metrics(self) -> dict[str, Any]:
        """The figures for the ``provider.metrics`` log line."""
        return self.http.metrics()

    # -- what a provider module declares -------------------------------------------------

    def classify(self, response: Response) -> Classified:
        """What ``response`` means; providers refine this with what their bodies say."""
        return classify_status(response)

    def auth_headers(self) -> Mapping[str, str]:
        """Headers carrying the key, e.g. ``{"Authorization": f"Token {key}"}``; default none."""
        return {}

    def auth_params(self) -> Mapping[str, str]:
        """Query parameters carrying the key, for APIs that take it nowhere else."""
        return {}

    def map_symbol(self, symbol: str) -> str:
        """This API's symbol for a flow ticker (e.g. ``BRK-B`` → ``BRK.B``); default as is."""
        return symbol

    def api_symbol(self, symbol: str) -> str:
        """The symbol to send: a ``[providers.X.symbols]`` override, else ``map_symbol``."""
        override = self.settings.symbols.get(symbol)
        return override if override is not None else self.map_symbol(symbol)

    def api_key(self) -> str:
        """The configured key (for ``auth_headers``/``auth_params`` only; never log it)."""
        key = self.settings.api_key
        if key is None:
            raise AuthError(f"{self.name}: no api_key configured", provider=self.name)
        return key.get_secret_value()

    # -- capabilities: implemented by the providers that declare them -----------------------

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily bars for trading dates ``start..end`` inclusive; failures raise typed errors."""
        raise NotImplementedError(f"{self.kind} does not serve {Capability.DAILY_BARS}")

    async def bars_and_actions(
        self, symbol: str, start: date, end: date
    ) -> tuple[list[Bar], tuple[list[Dividend], list[Split]] | None]:
        """Daily bars and the dividends/splits *the same request* carries (None: it has none).

        Providers whose bar response includes the actions (Yahoo's chart events, Tiingo's
        ``divCash``/``splitFactor``) override this, so storing actions costs no request.
        """
        return await self.daily_bars(symbol, start, end), None

    async def quote(self, symbol: str) -> Quote:
        """The latest price of ``symbol``."""
        raise NotImplementedError(f"{self.kind} does not serve {Capability.QUOTE}")

    async def fx_rates(
        self, base: str, quotes: Sequence[str], start: date, end: date
    ) -> list[FxRate]:
        """Rates of ``quotes`` per one ``base`` for each published day in ``start..end``."""
        raise NotImplementedError(f"{self.kind} does not serve {Capability.FX}")

    async def actions(
        self, symbol: str, start: date, end: date
    ) -> tuple[list[Dividend], list[Split]]:
        """Dividends and splits of ``symbol`` going ex in ``start..end``."""
        raise NotImplementedError(f"{self.kind} does not serve {Capability.ACTIONS}")

    def _bad(self, response: Response, symbol: str, reason: str) -> BadResponseError:
        """A counted :class:`BadResponseError` for ``response``: reason, status, redacted URL."""
        return self.http.fail(
            BadResponseError(
                f"{self.name}: {reason} (HTTP {response.status} from {response.url})",
                provider=self.name,
                symbol=symbol,
                status=response.status,
            )
        )

    def _not_found(
        self, symbol: str, reason: str, status: int | None = None
    ) -> SymbolNotFoundError:
        """A counted :class:`SymbolNotFoundError` for ``symbol``: ``reason`` (and status)."""
        return self.http.fail(
            SymbolNotFoundError(
                f"{self.name}: {reason}", provider=self.name, symbol=symbol, status=status
            )
        )
