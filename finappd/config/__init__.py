"""Configuration: one TOML file, ``FINAPPD_*`` environment overrides, secrets from files.

Precedence, highest first: environment (``FINAPPD_PROVIDERS__YAHOO__MAX_CONCURRENCY=2``),
credential files in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``; a file
named ``<provider>_api_key``, and ``api_token`` for the HTTP API), then the TOML file.
Any problem becomes one
:class:`~finappd.errors.ConfigError` naming the key, which the CLI turns into one
line on stderr and exit code 78 (EX_CONFIG).
"""

from finappd.config.load import Settings, find_config_file, load_settings
from finappd.config.sections import FlowSettings, LoggingSettings, ProviderSettings, StoreSettings
from finappd.config.service import ApiSettings, Listen, NotifySettings
from finappd.config.values import (
    DAY,
    EX_CONFIG,
    FLOW_CAPABILITIES,
    FLOW_KINDS,
    MONTH,
    Duration,
    Rate,
    TimezoneName,
    parse_duration,
)

__all__ = [
    "DAY",
    "EX_CONFIG",
    "FLOW_CAPABILITIES",
    "FLOW_KINDS",
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
