"""Tests for finappd.providers._http: the shared session, URL redaction, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from finappd.providers.base import make_session, parse_retry_after, redact_url

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


async def test_make_session_has_explicit_timeout_and_user_agent() -> None:
    """The shared session never uses aiohttp's 300 s default and names finappd."""
    session = make_session()
    try:
        assert session.timeout.total is not None
        assert session.timeout.total < 300
        assert session.headers["User-Agent"].startswith("finappd/")
    finally:
        await session.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.io/q?apikey=abc&symbol=IBM", "https://x.io/q?apikey=REDACTED&symbol=IBM"),
        ("https://x.io/q?symbol=IBM&apiKey=abc", "https://x.io/q?symbol=IBM&apiKey=REDACTED"),
        ("https://x.io/q?TOKEN=abc#frag", "https://x.io/q?TOKEN=REDACTED#frag"),
        (
            "https://x.io/q?x_cg_demo_api_key=k1&a=1",
            "https://x.io/q?x_cg_demo_api_key=REDACTED&a=1",
        ),
        ("https://x.io/q?x_cg_pro_api_key=k2", "https://x.io/q?x_cg_pro_api_key=REDACTED"),
        ("https://x.io/q?crumb=Ab.c&period1=1", "https://x.io/q?crumb=REDACTED&period1=1"),
        ("https://x.io/q?mytoken=keep&apikeys=keep", "https://x.io/q?mytoken=keep&apikeys=keep"),
        ("https://u:pw@x.io/q", "https://u:REDACTED@x.io/q"),
        ("https://x.io/v8/finance/chart/%5EGSPC", "https://x.io/v8/finance/chart/%5EGSPC"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    """Secret query values and passwords are replaced by REDACTED; nothing else changes."""
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        (" 120 ", 120.0),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("soon", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After is delta-seconds or an HTTP-date, never negative; junk means unknown."""
    assert parse_retry_after(value, NOW) == expected
