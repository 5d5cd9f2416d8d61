"""HTTP plumbing shared by the providers: the session, the response record, URL redaction."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any

import aiohttp
import orjson
import yarl

from finappd import __version__
from finappd.providers.spec import secret_params
from finappd.providers.verdicts import Verdict

__all__ = [
    "USER_AGENT",
    "Response",
    "decode_json",
    "make_session",
    "parse_retry_after",
    "redact_url",
]

USER_AGENT = f"finappd/{__version__} (+market-data ingestion daemon)"
_USERINFO_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


@cache
def _secret_query(names: frozenset[str]) -> re.Pattern[str]:
    """The values of query parameters ``names`` (any case)."""
    alternatives = "|".join(re.escape(name) for name in sorted(names))
    return re.compile(rf"([?&](?:{alternatives})=)[^&#]*", re.IGNORECASE)


def redact_url(url: str | yarl.URL) -> str:
    """``url`` with the values of every provider's ``secret_params`` and passwords as REDACTED."""
    text = str(url)
    if "=" in text:  # a secret parameter has a value
        text = _secret_query(secret_params()).sub(r"\1REDACTED", text)
    if "@" in text:  # only userinfo can hold a password
        text = _USERINFO_PASSWORD.sub(r"\1REDACTED@", text)
    return text


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means "-0000"
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def make_session() -> aiohttp.ClientSession:
    """The one HTTP session of the daemon; call from a running event loop, close it at exit."""
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=0, ttl_dns_cache=300)
    # A backstop only: every provider request passes its own timeout from config.
    timeout = aiohttp.ClientTimeout(total=60, sock_connect=10, sock_read=30)
    return aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers={"User-Agent": USER_AGENT}
    )


def decode_json(text: str) -> Any:
    """``text`` as JSON: orjson's fast path, the stdlib where it is stricter (NaN, Infinity).

    Raises :class:`json.JSONDecodeError` (orjson's subclasses it) with the stdlib's message
    for a body that is not JSON, as every classifier catches it.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # Feeds send NaN (PROVIDERS.md §10) and the stdlib, unlike orjson, reads it.
        return json.loads(text)


_UNDECODED: Any = object()


@dataclass(frozen=True, slots=True)
class Response:
    """What a provider needs of one HTTP response: status, two headers, the body text."""

    status: int
    url: str  # redacted
    content_type: str
    retry_after: str | None
    text: str
    verdict: Verdict = Verdict.OK  # set by the polite client: OK or EMPTY
    # The body decoded once by json(): a classifier and a parser share one decode.
    decoded: Any = field(default=_UNDECODED, repr=False, compare=False)

    def json(self) -> Any:
        """The body as JSON (decoded on the first call, then kept); raises JSONDecodeError."""
        if self.decoded is _UNDECODED:
            object.__setattr__(self, "decoded", decode_json(self.text))
        return self.decoded
