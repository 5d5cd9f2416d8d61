"""The transport: one GET over the shared session, its timeout, and the key scrubbed away.

It sends the provider's static headers and its key headers (merged once, not per
request) with an explicit ``aiohttp.ClientTimeout`` from config, reads the whole
body, and replaces the configured key (raw or percent-encoded) with ``REDACTED`` in
everything it hands on: the body text and the URL shown in messages. A timeout or
a connection error becomes a retryable :class:`~finappd.providers._outcome.Retrying`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import quote

import aiohttp
import yarl
from pydantic import SecretStr

from finappd.errors import ProviderConnectionError, ProviderTimeoutError
from finappd.providers._http import Response, redact_url
from finappd.providers._outcome import Retrying

__all__ = ["Transport"]


class Transport:
    """Sends one request of a provider and reads its answer into a scrubbed :class:`Response`."""

    def __init__(
        self,
        name: str,
        session: aiohttp.ClientSession,
        *,
        timeout: aiohttp.ClientTimeout,
        headers: Mapping[str, str],
        auth_headers: Callable[[], Mapping[str, str]],
        secret: SecretStr | None,
    ) -> None:
        self.name = name
        self.session = session
        self.timeout = timeout
        self._static = headers
        self._auth_headers = auth_headers
        self._headers: dict[str, str] | None = None  # built on the first send
        key = secret.get_secret_value() if secret is not None else ""
        # A key too short to search for without mangling ordinary text is not scrubbed.
        self._forms = () if len(key) < 4 else tuple({key, quote(key, safe="")})

    def __repr__(self) -> str:
        return f"<Transport {self.name} timeout={self.timeout.total:g}s>"

    def scrub(self, text: str) -> str:
        """``text`` with the configured key (raw or percent-encoded) replaced by REDACTED."""
        for form in self._forms:
            text = text.replace(form, "REDACTED")
        return text

    def shown(self, url: str) -> str:
        """``url`` as messages may show it: secret parameters and the key redacted."""
        return self.scrub(redact_url(url))

    async def send(self, target: yarl.URL, shown: str, symbol: str | None) -> Response:
        """Send the request and read the whole body; transport failures are retryable."""
        headers = self._headers
        if headers is None:
            headers = self._headers = {**self._static, **self._auth_headers()}
        try:
            async with self.session.get(target, headers=headers, timeout=self.timeout) as resp:
                body = await resp.read()
                return Response(
                    status=resp.status,
                    url=shown,
                    content_type=resp.content_type,
                    retry_after=resp.headers.get("Retry-After"),
                    # An API may echo the request (key included) in its body:
                    # scrubbed here, no parser or message can ever repeat it.
                    text=self.scrub(body.decode(resp.charset or "utf-8", errors="replace")),
                )
        except TimeoutError as exc:  # aiohttp's timeouts subclass TimeoutError
            raise Retrying(
                ProviderTimeoutError(
                    f"{self.name}: no answer within {self.timeout.total:g}s from {shown}",
                    provider=self.name,
                    symbol=symbol,
                )
            ) from exc
        except aiohttp.ClientError as exc:
            error = ProviderConnectionError(
                f"{self.name}: connection failed to {shown}: {type(exc).__name__}",
                provider=self.name,
                symbol=symbol,
            )
            if isinstance(exc, aiohttp.ClientResponseError | aiohttp.InvalidURL):
                # Their text quotes the full URL, query (and key) included: not chained.
                raise Retrying(error) from None
            raise Retrying(error) from exc
