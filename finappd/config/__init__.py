"""Configuration: one TOML file, ``FINAPPD_*`` environment overrides, secrets from files.

Precedence, highest first: environment (``FINAPPD_PROVIDERS__<NAME>__MAX_CONCURRENCY=2``),
credential files in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``; a file
named ``<provider>_api_key``, and ``api_token`` for the HTTP API), then the TOML file.
Any problem becomes one
:class:`~finappd.errors.ConfigError` naming the key, which the CLI turns into one
line on stderr and exit code 78 (EX_CONFIG).

This package is a leaf: it knows the shape of a config, not which provider or flow
kinds exist. :func:`finappd.validate.check_settings` checks those, where the settings
are put to use (the CLI, a reload, the runtime).
"""

from finappd.config.load import Settings, find_config_file, load_settings
from finappd.config.sections import FlowSettings, LoggingSettings, ProviderSettings, StoreSettings
from finappd.config.service import ApiSettings, Listen, NotifySettings
from finappd.config.values import (
    DAY,
    EX_CONFIG,
    MONTH,
    Duration,
    Rate,
    TimezoneName,
    parse_duration,
)

__all__ = [
    "DAY",
    "EX_CONFIG",
    "MONTH",
    "ApiSettings",
    "Duration",
    "FlowSettings",
    "Listen",
    "LoggingSettings",
    "NotifySettings",
    "ProviderSettings",
    "Rate",
    "Settings",
    "StoreSettings",
    "TimezoneName",
    "find_config_file",
    "load_settings",
    "parse_duration",
]
