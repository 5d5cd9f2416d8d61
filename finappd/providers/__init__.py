"""Market-data providers: the polite base class, one class per API, and the registry."""

from __future__ import annotations

import aiohttp

from finappd.config import ProviderSettings
from finappd.providers.alphavantage import AlphaVantageProvider
from finappd.providers.base import BaseProvider, make_session, redact_url
from finappd.providers.coingecko import CoinGeckoProvider
from finappd.providers.finnhub import FinnhubProvider
from finappd.providers.frankfurter import FrankfurterProvider
from finappd.providers.polygon import PolygonProvider
from finappd.providers.quota import QuotaLedger, UsageBackend
from finappd.providers.stooq import StooqProvider
from finappd.providers.tiingo import TiingoProvider
from finappd.providers.twelvedata import TwelveDataProvider
from finappd.providers.yahoo import YahooProvider

__all__ = [
    "PROVIDER_KINDS",
    "AlphaVantageProvider",
    "BaseProvider",
    "CoinGeckoProvider",
    "FinnhubProvider",
    "FrankfurterProvider",
    "PolygonProvider",
    "StooqProvider",
    "TiingoProvider",
    "TwelveDataProvider",
    "YahooProvider",
    "make_provider",
    "make_session",
    "redact_url",
]

#: Provider kind (``providers.<name>.kind``, defaulting to the name) → class.
PROVIDER_KINDS: dict[str, type[BaseProvider]] = {
    "yahoo": YahooProvider,
    "stooq": StooqProvider,
    "alphavantage": AlphaVantageProvider,
    "finnhub": FinnhubProvider,
    "polygon": PolygonProvider,
    "tiingo": TiingoProvider,
    "twelvedata": TwelveDataProvider,
    "coingecko": CoinGeckoProvider,
    "frankfurter": FrankfurterProvider,
}


def make_provider(
    name: str,
    settings: ProviderSettings,
    session: aiohttp.ClientSession,
    *,
    usage: UsageBackend | None = None,
    ledger: QuotaLedger | None = None,
) -> BaseProvider:
    """The provider called ``name``, of class ``PROVIDER_KINDS[settings.kind or name]``.

    ``usage`` persists its quota ledger (the runtime passes the store's); without it
    the daily and monthly quotas are kept in memory only. ``ledger`` is the quota
    ledger to count in (the runtime keeps one per provider name, so a rebuilt instance
    goes on spending the same budget); without it the provider makes its own.
    """
    kind = settings.kind or name
    try:
        cls = PROVIDER_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(PROVIDER_KINDS))
        raise ValueError(f"unknown provider kind {kind!r} (known: {known})") from None
    return cls(name, settings, session, usage=usage, ledger=ledger)
