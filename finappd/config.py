"""Configuration: one TOML file, ``FINAPPD_*`` environment overrides, secrets from files.

Precedence, highest first: environment (``FINAPPD_PROVIDERS__YAHOO__MAX_CONCURRENCY=2``),
credential files in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``; a file
named ``<provider>_api_key``), then the TOML file. Any problem becomes one
:class:`~finappd.errors.ConfigError` naming the key, which the CLI turns into one
line on stderr and exit code 78 (EX_CONFIG).
"""

from __future__ import annotations

import itertools
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from finappd.calendar import EXCHANGES, exchange_for
from finappd.calendar.trigger import CloseTrigger
from finappd.errors import ConfigError

__all__ = [
    "FlowSettings",
    "LoggingSettings",
    "ProviderSettings",
    "Rate",
    "Settings",
    "StoreSettings",
    "find_config_file",
    "load_settings",
    "parse_duration",
]

EX_CONFIG = 78
FLOW_KINDS = ("daily_bars", "quotes", "fx", "crypto")
#: The provider capability (``providers.base.Capability``) each flow kind needs.
FLOW_CAPABILITIES = {"daily_bars": "daily_bars", "quotes": "quote", "fx": "fx", "crypto": "crypto"}

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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Model):
    """Where the SQLite file lives and how durable its commits are."""

    path: Path = Path("finappd.sqlite3")
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    busy_timeout: Duration = timedelta(seconds=10)

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


class FlowSettings(_Model):
    """One scheduled ingestion job."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: Literal["daily_bars", "quotes", "fx", "crypto"] = "daily_bars"
    provider: str
    fallback: list[str] = Field(default_factory=list)  # tried in order when provider fails
    tickers: list[str] = Field(default_factory=list)
    tickers_file: Path | None = None
    every: Duration | None = None
    cron: str | None = None
    # Run at each session close of the tickers' exchanges (or ``exchange``) + this delay.
    at_close: Duration | None = None
    exchange: str | None = None  # a calendar code (XNYS, XLON, ...); default: by suffix
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
        if self.exchange is not None and self.exchange not in EXCHANGES:
            raise ValueError(f"unknown exchange {self.exchange!r}; one of {sorted(EXCHANGES)}")
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
            if self.exchange is not None:
                exchanges = [EXCHANGES[self.exchange]]
            else:
                exchanges = [exchange_for(t) for t in self.tickers]
            return CloseTrigger(exchanges, self.at_close)
        assert self.every is not None  # guaranteed by _check
        return self.every

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


class _CredentialsSource(PydanticBaseSettingsSource):
    """API keys from ``$CREDENTIALS_DIRECTORY/<provider>_api_key`` files."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden; pydantic-settings never calls this

    def __call__(self) -> dict[str, Any]:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory or not Path(directory).is_dir():
            return {}
        providers: dict[str, Any] = {}
        for entry in sorted(Path(directory).glob("*_api_key")):
            name = entry.name.removesuffix("_api_key")
            try:
                providers[name] = {"api_key": entry.read_text(encoding="utf-8").strip()}
            except (OSError, UnicodeDecodeError) as exc:
                # Raised from a settings source, outside validation: say it the same way.
                problem = getattr(exc, "strerror", None) or getattr(exc, "reason", str(exc))
                raise ConfigError(
                    f"providers.{name}.api_key", f"cannot read credential {str(entry)!r}: {problem}"
                ) from exc
        return {"providers": providers} if providers else {}


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="FINAPPD_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    grace_period: Duration = timedelta(seconds=30)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    flows: list[FlowSettings] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs, so it must rank lowest.
        return (env_settings, _CredentialsSource(settings_cls), init_settings)

    @model_validator(mode="after")
    def _cross_check(self) -> Settings:
        # Late import: the provider registry imports this module.
        from finappd.providers import PROVIDER_KINDS

        for name, provider in self.providers.items():
            provider.kind = provider.kind or name
            if provider.kind not in PROVIDER_KINDS:
                known = ", ".join(sorted(PROVIDER_KINDS))
                raise ValueError(
                    f"providers.{name}.kind: unknown provider {provider.kind!r} (known: {known})"
                )
        seen: set[str] = set()
        for i, flow in enumerate(self.flows):
            if flow.name in seen:
                raise ValueError(f"flows.{i}.name: duplicate flow name {flow.name!r}")
            seen.add(flow.name)
            if flow.provider not in self.providers:
                if flow.provider not in PROVIDER_KINDS:
                    raise ValueError(f"flows.{i}.provider: unknown provider {flow.provider!r}")
                self.providers[flow.provider] = ProviderSettings(kind=flow.provider)
            self._check_chain(i, flow, PROVIDER_KINDS)
        return self

    def _check_chain(self, i: int, flow: FlowSettings, kinds: Mapping[str, Any]) -> None:
        """A flow's provider and fallbacks: configured, distinct, able to serve its kind."""
        need = FLOW_CAPABILITIES[flow.kind]
        chain = [("provider", flow.provider)]
        chain += [(f"fallback.{j}", name) for j, name in enumerate(flow.fallback)]
        seen: set[str] = set()
        for key, name in chain:
            if name not in self.providers:
                raise ValueError(
                    f"flows.{i}.{key}: {name!r} is not a configured provider "
                    f"(configured: {', '.join(sorted(self.providers))})"
                )
            if name in seen:
                raise ValueError(f"flows.{i}.{key}: {name!r} is already in this flow's chain")
            seen.add(name)
            kind = self.providers[name].kind or name
            if need not in kinds[kind].capabilities:
                raise ValueError(f"flows.{i}.{key}: provider {name!r} ({kind}) has no {need}")
            if kinds[kind].requires_key and self.providers[name].api_key is None:
                raise ValueError(
                    f"providers.{name}.api_key: {kind} needs an API key (set "
                    f"FINAPPD_PROVIDERS__{name.upper()}__API_KEY or a {name}_api_key credential)"
                )

    def flow(self, name: str) -> FlowSettings:
        """The flow called ``name``."""
        for flow in self.flows:
            if flow.name == name:
                return flow
        raise ConfigError("flows", f"no flow named {name!r}")

    def masked(self) -> dict[str, Any]:
        """The effective configuration as JSON-able data, secrets shown as ``**********``."""
        return self.model_dump(mode="json")


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file: ``--config``, ``$FINAPPD_CONFIG``, systemd's dir, or ``./finappd.toml``."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get("FINAPPD_CONFIG"):
        return Path(env)
    candidates = [
        Path(d) / "finappd.toml"
        for d in os.environ.get("CONFIGURATION_DIRECTORY", "").split(":")
        if d
    ]
    candidates.append(Path("finappd.toml"))
    return next((c for c in candidates if c.is_file()), None)


def _error_key(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "config"


def load_settings(path: Path | None) -> Settings:
    """Read, merge and validate the configuration, or raise one ConfigError naming the key."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError("config", f"cannot read {str(path)!r}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"TOML syntax error in {str(path)!r}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError("config", f"{str(path)!r} is not UTF-8 text: {exc.reason}") from exc
    try:
        return Settings(**data)
    except SettingsError as exc:
        # An environment override pydantic-settings could not even parse (e.g. not JSON).
        m = re.search(r'field "(\w+)"', str(exc))
        key = m[1] if m else "config"
        raise ConfigError(
            key, f"cannot parse FINAPPD_{key.upper()} from the environment: {exc.__cause__ or exc}"
        ) from exc
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        key = _error_key(first["loc"])
        # Cross-field checks name their own key as "key: problem".
        if m := re.match(r"^([\w.]+): (.*)$", message):
            key, message = m[1], m[2]
        raise ConfigError(key, message) from exc
