"""Currency-pair tickers: how a flow spells an FX pair, whichever provider serves it.

A pair is ``BASE/QUOTE`` (units of quote per one base). Flows accept the slash form,
the ``=X`` form of chart tickers (``EURUSD=X``; a bare ``JPY=X`` means USD/JPY) and the
bare six letters (``EURUSD``); :func:`fx_pair` reads all three.
"""

from __future__ import annotations

import re

__all__ = ["fx_pair"]

_CODE = re.compile(r"^[A-Z]{3}$")


def fx_pair(symbol: str) -> tuple[str, str]:
    """``(base, quote)`` of ``EUR/USD``, ``EURUSD=X``, ``JPY=X`` (USD/JPY) or ``EURUSD``."""
    text = symbol.strip().upper()
    if "/" in text:
        base, _, quote = text.partition("/")
    else:
        pair = text.removesuffix("=X")
        if len(pair) == 3 and text.endswith("=X"):
            base, quote = "USD", pair
        else:
            base, quote = pair[:3], pair[3:]
    if not (_CODE.match(base) and _CODE.match(quote)):
        raise ValueError(f"not a currency pair: {symbol!r} (expected e.g. EUR/USD or EURUSD=X)")
    return base, quote
