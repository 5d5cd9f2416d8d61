"""Configuration value types: durations, request rates and timezone names."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = [
    "DAY",
    "EX_CONFIG",
    "MONTH",
    "Duration",
    "Rate",
    "TimezoneName",
    "parse_duration",
]

EX_CONFIG = 78

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PERIODS = {
    "second": 1.0,
    "sec": 1.0,
    "s": 1.0,
    "minute": 60.0,
    "min": 60.0,
    "m": 60.0,
    "hour": 3600.0,
    "h": 3600.0,
    "day": 86400.0,
    "d": 86400.0,
    "month": 2592000.0,
    "mo": 2592000.0,
}
#: Rate windows longer than an hour are quotas kept in SQLite: exactly a day or a month.
DAY = 86400.0
MONTH = 2592000.0  # a calendar month in the quota's timezone, whatever its length
_UNIT_NAMES = {1.0: "second", 60.0: "minute", 3600.0: "hour", DAY: "day", MONTH: "month"}


def parse_duration(value: object) -> timedelta:
    """``"15m"``, ``"30s"``, ``"1h"``, ``"2d"``, ``"500ms"`` or seconds → timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return timedelta(seconds=float(m[1]) * _DURATION_UNITS[m[2]])
    raise ValueError(f"expected a duration like '15m', '30s', '1h', got {value!r}")


def _positive_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive_duration)]


class Rate(BaseModel):
    """A request rate: ``count`` requests per ``period`` seconds (a day or month is a quota)."""

    model_config = ConfigDict(frozen=True)

    count: int = Field(ge=1)
    period: float = Field(gt=0)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        if isinstance(value, str):
            m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*", value.lower())
            if not m or m[3] not in _PERIODS:
                raise ValueError(f"expected a rate like '60/minute' or '5/s', got {value!r}")
            period = float(m[2] or 1) * _PERIODS[m[3]]
            if period > 3600 and period not in (DAY, MONTH):
                raise ValueError(
                    f"a rate window longer than an hour must be one day or one month: {value!r}"
                )
            return {"count": int(m[1]), "period": period}
        return value

    def __str__(self) -> str:
        unit = _UNIT_NAMES.get(self.period)
        return f"{self.count}/{unit}" if unit else f"{self.count}/{self.period:g}s"


def _valid_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc
    return name


TimezoneName = Annotated[str, AfterValidator(_valid_timezone)]
