"""The configuration checked against the code: provider kinds, their capabilities and keys.

:mod:`finappd.config` is a leaf that knows the shape of a config but not which
provider or flow kinds exist; this module checks what only they know, from the
providers' specs (:mod:`finappd.providers.spec`) and the flow-kind table
(:mod:`finappd.flows.kinds`). It runs wherever settings are put to use: the CLI
after loading, a config reload before applying, and the :class:`~finappd.runtime.Runtime`.
Like the loader, it raises one :class:`~finappd.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from pathlib import Path

from finappd.config import FlowSettings, Settings, load_settings
from finappd.errors import ConfigError
from finappd.flows.kinds import flow_kind
from finappd.providers import PROVIDER_KINDS

__all__ = ["check_settings", "load_checked"]


def check_settings(settings: Settings) -> Settings:
    """``settings``, once every provider kind exists and every flow's chain can serve it."""
    implicit = settings.implicit_providers
    for name, provider in settings.providers.items():
        kind = provider.kind or name
        if name not in implicit and kind not in PROVIDER_KINDS:
            known = ", ".join(sorted(PROVIDER_KINDS))
            raise ConfigError(
                f"providers.{name}.kind", f"unknown provider {kind!r} (known: {known})"
            )
    for i, flow in enumerate(settings.flows):
        if flow.provider in implicit and flow.provider not in PROVIDER_KINDS:
            raise ConfigError(f"flows.{i}.provider", f"unknown provider {flow.provider!r}")
        _check_chain(settings, i, flow)
    return settings


def _check_chain(settings: Settings, i: int, flow: FlowSettings) -> None:
    """Each provider of a flow's chain serves its kind, and has the key it needs."""
    try:
        need = flow_kind(flow.kind).capability
    except ValueError as exc:
        raise ConfigError(f"flows.{i}.kind", str(exc)) from None
    chain = [("provider", flow.provider)]
    chain += [(f"fallback.{j}", name) for j, name in enumerate(flow.fallback)]
    for key, name in chain:
        provider = settings.providers[name]
        kind = provider.kind or name
        spec = PROVIDER_KINDS[kind].spec
        if need not in spec.capabilities:
            raise ConfigError(f"flows.{i}.{key}", f"provider {name!r} ({kind}) has no {need}")
        if spec.requires_key and provider.api_key is None:
            raise ConfigError(
                f"providers.{name}.api_key",
                f"{kind} needs an API key (set FINAPPD_PROVIDERS__{name.upper()}__API_KEY "
                f"or a {name}_api_key credential)",
            )


def load_checked(path: Path | None) -> Settings:
    """:func:`~finappd.config.load_settings`, then :func:`check_settings`."""
    return check_settings(load_settings(path))
