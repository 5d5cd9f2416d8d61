"""The instruments part of the configuration: ``base_currency``, per-ticker declarations, delisting.

```toml
base_currency = "EUR"

[instruments."VOD.L"]        # any field may be declared; a declared field beats any answer
name = "Vodafone Group plc"
type = "equity"
exchange = "XLON"             # ISO 10383 MIC
currency = "GBp"              # ISO 4217, or the minor unit a provider quotes in (GBp, ZAc, ILA)
isin = "GB00BH4HKS39"

[delisted]
after_runs = 3                # runs in a row answering "no such symbol" before it is marked
recheck_every = "7d"          # then asked again this often, not every run
```
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from finappd.config.values import Duration, TimezoneName
from finappd.units import unit_of

__all__ = ["DelistedSettings", "InstrumentSettings", "check_currency"]

#: The instrument types ``instruments.type`` uses (``finappd.store.tables.INSTRUMENT_TYPES``).
InstrumentType = Literal["equity", "etf", "fund", "index", "fx", "crypto", "future"]

_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")
_MIC = re.compile(r"^[A-Z0-9]{4}$")


def check_currency(value: str | None, *, minor: bool) -> str | None:
    """``value`` if it is an ISO 4217 code (or, with ``minor``, a known minor unit)."""
    if value is None:
        return None
    unit = unit_of(value)
    if unit is None or (unit.is_minor and not minor):
        allowed = "an ISO 4217 code like GBP" + (" or a minor unit like GBp" if minor else "")
        raise ValueError(f"expected {allowed}, got {value!r}")
    return unit.code


class InstrumentSettings(BaseModel):
    """What the config declares of one ticker; each field set here overrides the answers."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1)
    type: InstrumentType | None = None
    exchange: str | None = None
    exchange_timezone: TimezoneName | None = None
    currency: str | None = None
    isin: str | None = None

    @field_validator("exchange")
    @classmethod
    def _mic(cls, value: str | None) -> str | None:
        if value is not None and not _MIC.match(value):
            raise ValueError(f"expected an ISO 10383 MIC like XLON, got {value!r}")
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return check_currency(value, minor=True)

    @field_validator("isin")
    @classmethod
    def _isin(cls, value: str | None) -> str | None:
        if value is not None and not _ISIN.match(value):
            raise ValueError(f"expected a 12-character ISIN like US0378331005, got {value!r}")
        return value


class DelistedSettings(BaseModel):
    """When a ticker answering "no such symbol" run after run is marked, and how often re-asked."""

    model_config = ConfigDict(extra="forbid")

    after_runs: int = Field(default=3, ge=1, le=1000)
    recheck_every: Duration = timedelta(days=7)
