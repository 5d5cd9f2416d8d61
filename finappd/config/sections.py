"""The configuration's sections: store, logging, one provider, one flow."""

from __future__ import annotations

import itertools
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from finappd.calendar import EXCHANGES, Exchange, exchange_for
from finappd.calendar import exchange as named_exchange
from finappd.calendar.trigger import CloseTrigger
from finappd.config.values import Duration, Rate, TimezoneName

__all__ = ["FlowSettings", "LoggingSettings", "ProviderSettings", "StoreSettings"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Model):
    """Where the data lives: a SQLite file (``path``, the default) or PostgreSQL (``url``).

    ``url`` is a libpq URL without a password (``postgresql://finappd@db.example/finance``);
    the password comes from ``$CREDENTIALS_DIRECTORY/store_password`` or
    ``FINAPPD_STORE__PASSWORD``, never from the config file.
    """

    path: Path = Path("finappd.sqlite3")
    url: str | None = None
    password: SecretStr | None = None
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    busy_timeout: Duration = timedelta(seconds=10)
    connect_timeout: Duration = timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL")
        userinfo, at, _ = rest.rpartition("@")
        if (at and ":" in userinfo) or re.search(r"[?&]password=", rest):
            # Say so without echoing the URL: it holds the password.
            raise ValueError(
                "must not hold a password: put it in $CREDENTIALS_DIRECTORY/store_password "
                "or FINAPPD_STORE__PASSWORD"
            )
        return value

    def resolved_path(self) -> Path:
        """The path, relative to ``$STATE_DIRECTORY`` (systemd) or the working directory."""
        if self.path.is_absolute():
            return self.path
        base = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        return Path(base or ".") / self.path


class LoggingSettings(_Model):
    """Log level and renderer (``auto`` = console on a TTY, JSON otherwise)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class ProviderSettings(_Model):
    """How politely one market-data API is used; unset limits take the provider's defaults."""

    kind: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    max_concurrency: int | None = Field(default=None, ge=1, le=1000)
    #: Requests in flight across all daemons sharing a PostgreSQL store (``store.url``).
    max_concurrency_total: int | None = Field(default=None, ge=1, le=1000)
    rate: Rate | None = None  # shorthand for ``rates = [rate]``; explicit None: no windows
    rates: list[Rate] | None = None  # e.g. ["8/minute", "800/day"]; [] means no windows
    daily_quota: int | None = Field(default=None, ge=0)
    monthly_quota: int | None = Field(default=None, ge=0)
    quota_reset_tz: TimezoneName | None = None  # quotas reset at midnight here
    circuit_threshold: int = Field(default=5, ge=1, le=1000)
    circuit_cooldown: Duration = timedelta(seconds=60)
    symbols: dict[str, str] = Field(default_factory=dict)  # flow ticker -> provider symbol
    connect_timeout: Duration = timedelta(seconds=5)
    read_timeout: Duration = timedelta(seconds=20)
    retries: int = Field(default=3, ge=0, le=20)
    backoff: Duration = timedelta(seconds=0.5)
    backoff_max: Duration = timedelta(seconds=30)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _one_rate_key(self) -> ProviderSettings:
        if self.rate is not None and self.rates is not None:
            raise ValueError("set 'rate' or 'rates', not both")
        return self


#: Flow kinds whose tickers are pairs, not listings, and the calendar they trade on.
_PAIR_KINDS = {"crypto": "CRYPTO", "fx": "FX"}


class FlowSettings(_Model):
    """One scheduled ingestion job."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: str = "daily_bars"  # a flow kind (finappd.flows.kinds); checked by finappd.validate
    provider: str
    fallback: list[str] = Field(default_factory=list)  # tried in order when provider fails
    tickers: list[str] = Field(default_factory=list)
    tickers_file: Path | None = None
    every: Duration | None = None
    cron: str | None = None
    # Run at each session close of the tickers' exchanges (or ``exchange``) + this delay.
    at_close: Duration | None = None
    # Every ticker's exchange: a MIC (XNYS, XLON, XPAR, ...) or an alias (NYSE, LSE, ...);
    # default: each ticker's own (the provider's metadata, else its suffix).
    exchange: str | None = None
    timezone: TimezoneName = "UTC"
    num_workers: int = Field(default=8, ge=1, le=1000)
    lookback_days: int = Field(default=10, ge=1, le=36500)
    # Trading days before the newest stored bar that every run fetches again.
    revision_days: int = Field(default=5, ge=0, le=365)
    # False: every run re-fetches the whole lookback window (no skipping, no revision window).
    incremental: bool = True
    deadline: Duration | None = None

    @field_validator("tickers")
    @classmethod
    def _clean_tickers(cls, value: list[str]) -> list[str]:
        cleaned = [t.strip() for t in value]
        if any(not t or any(c.isspace() for c in t) for t in cleaned):
            raise ValueError("tickers must be non-empty symbols without spaces")
        return list(dict.fromkeys(cleaned))

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str | None) -> str | None:
        return None if value is None else named_exchange(value).code  # an alias becomes its MIC

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronTrigger.from_crontab(value, timezone=UTC)
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {value!r}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _check(self) -> FlowSettings:
        if sum(x is not None for x in (self.every, self.cron, self.at_close)) != 1:
            raise ValueError("set exactly one of 'every', 'cron' or 'at_close'")
        if not self.tickers and self.tickers_file is None:
            raise ValueError("set 'tickers' or 'tickers_file'")
        if self.tickers_file is not None:
            self.tickers = list(dict.fromkeys([*self.tickers, *_read_tickers(self.tickers_file)]))
        interval = self.min_interval()
        if self.deadline is None:
            self.deadline = min(interval * 0.9, timedelta(hours=1))
        elif self.deadline >= interval:
            raise ValueError(
                f"deadline {self.deadline} must be shorter than the interval {interval}"
            )
        return self

    def trigger(self) -> BaseTrigger | timedelta:
        """The schedule: a cron or session-close trigger, or a fixed interval."""
        if self.cron is not None:
            return CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))
        if self.at_close is not None:
            return CloseTrigger(list(self.exchanges().values()), self.at_close)
        assert self.every is not None  # guaranteed by _check
        return self.every

    def exchange_of(self, symbol: str, provider: Exchange | None = None) -> Exchange:
        """The exchange whose calendar ``symbol`` runs on in this flow: ``exchange``, 24/7 in a
        crypto flow, weekdays in an fx flow (its tickers are pairs, ``EUR/USD``), else
        ``provider`` (its metadata), else the ticker's suffix."""
        if self.exchange is None and self.kind in _PAIR_KINDS:
            return EXCHANGES[_PAIR_KINDS[self.kind]]
        return exchange_for(symbol, self.exchange, provider)

    def exchanges(self) -> dict[str, Exchange]:
        """Each ticker's exchange (:meth:`exchange_of`)."""
        return {t: self.exchange_of(t) for t in self.tickers}

    def min_interval(self, samples: int = 32) -> timedelta:
        """The shortest gap between two runs (cron: over the next ``samples`` fires)."""
        trigger = self.trigger()
        if isinstance(trigger, timedelta):
            return trigger
        now = datetime.now(ZoneInfo(self.timezone))
        fires: list[datetime] = []
        previous: datetime | None = None
        for _ in range(samples):
            fire = trigger.get_next_fire_time(previous, now)
            if fire is None:
                break
            fires.append(fire)
            previous, now = fire, fire + timedelta(seconds=1)
        gaps = [b - a for a, b in itertools.pairwise(fires)]
        return min(gaps, default=timedelta(days=1))


def _read_tickers(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read tickers_file {str(path)!r}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"tickers_file {str(path)!r} is not UTF-8 text: {exc.reason}") from exc
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]
