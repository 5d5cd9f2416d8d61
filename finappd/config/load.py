"""Loading: find the file, merge TOML, credential files and ``FINAPPD_*``, validate.

The sources and their precedence are in the :mod:`finappd.config` docstring; every
problem comes out as one :class:`~finappd.errors.ConfigError` naming the key. What
only the providers and flows know (kinds, capabilities, keys) is checked by
:mod:`finappd.validate`.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from finappd.config.instruments import DelistedSettings, InstrumentSettings, check_currency
from finappd.config.sections import FlowSettings, LoggingSettings, ProviderSettings, StoreSettings
from finappd.config.service import ApiSettings, NotifySettings
from finappd.config.values import Duration
from finappd.errors import ConfigError

__all__ = ["Settings", "find_config_file", "load_settings"]


class _CredentialsSource(PydanticBaseSettingsSource):
    """API keys from ``$CREDENTIALS_DIRECTORY/<provider>_api_key`` files, the API's token
    from ``$CREDENTIALS_DIRECTORY/api_token``, the store's password from ``store_password``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden; pydantic-settings never calls this

    def __call__(self) -> dict[str, Any]:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory or not Path(directory).is_dir():
            return {}
        providers: dict[str, Any] = {}
        for entry in sorted(Path(directory).glob("*_api_key")):
            name = entry.name.removesuffix("_api_key")
            providers[name] = {"api_key": _credential(entry, f"providers.{name}.api_key")}
        found: dict[str, Any] = {"providers": providers} if providers else {}
        if (token := Path(directory) / "api_token").is_file():
            found["api"] = {"token": _credential(token, "api.token")}
        if (password := Path(directory) / "store_password").is_file():
            found["store"] = {"password": _credential(password, "store.password")}
        return found


def _credential(entry: Path, key: str) -> str:
    """The stripped text of credential file ``entry``, or a ConfigError naming ``key``."""
    try:
        return entry.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        # Raised from a settings source, outside validation: say it the same way.
        problem = getattr(exc, "strerror", None) or getattr(exc, "reason", str(exc))
        raise ConfigError(key, f"cannot read credential {str(entry)!r}: {problem}") from exc


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="FINAPPD_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    store: StoreSettings = StoreSettings()
    #: This daemon's name in ``runs.daemon`` and, on PostgreSQL, among the daemons sharing
    #: the database (each needs its own). Default: the host name.
    daemon_name: str = Field(default_factory=socket.gethostname, min_length=1, max_length=200)
    logging: LoggingSettings = LoggingSettings()
    grace_period: Duration = timedelta(seconds=30)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    flows: list[FlowSettings] = Field(default_factory=list)
    #: ISO 4217 code the ``closes_in_base`` views convert into; None: no conversion.
    base_currency: str | None = None
    instruments: dict[str, InstrumentSettings] = Field(default_factory=dict)
    delisted: DelistedSettings = DelistedSettings()
    api: ApiSettings = ApiSettings()
    notify: NotifySettings = NotifySettings()
    _implicit: set[str] = PrivateAttr(default_factory=set)

    @field_validator("base_currency")
    @classmethod
    def _iso_currency(cls, value: str | None) -> str | None:
        return check_currency(value, minor=False)

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
        for name, provider in self.providers.items():
            provider.kind = provider.kind or name
            if provider.max_concurrency_total is not None and self.store.url is None:
                raise ValueError(
                    f"providers.{name}.max_concurrency_total: a limit across daemons needs "
                    "store.url (daemons sharing PostgreSQL); one daemon has max_concurrency"
                )
        seen: set[str] = set()
        for i, flow in enumerate(self.flows):
            if flow.name in seen:
                raise ValueError(f"flows.{i}.name: duplicate flow name {flow.name!r}")
            seen.add(flow.name)
            if flow.provider not in self.providers:
                # A provider named by a flow alone runs with its kind's defaults.
                self.providers[flow.provider] = ProviderSettings(kind=flow.provider)
                self._implicit.add(flow.provider)
            self._check_chain(i, flow)
        return self

    def _check_chain(self, i: int, flow: FlowSettings) -> None:
        """A flow's fallbacks: configured, and distinct from each other and the provider."""
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

    @property
    def implicit_providers(self) -> frozenset[str]:
        """Providers no ``[providers.X]`` section configures, added because a flow names them."""
        return frozenset(self._implicit)

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
    if isinstance(data.get("store"), dict) and "password" in data["store"]:
        raise ConfigError(
            "store.password",
            "must not be in the config file: put it in $CREDENTIALS_DIRECTORY/store_password "
            "or FINAPPD_STORE__PASSWORD",
        )
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
