"""Market-data providers: the polite base class, one module per API, and the registry.

The registry is discovered, not listed: every public module of this package that
declares ``SPEC`` (a :class:`ProviderSpec`) and a :class:`BaseProvider` subclass
pointing at it (``spec = SPEC``) is a provider kind. Adding a provider is adding its
module; nothing else in the daemon names it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from types import MappingProxyType, ModuleType
from typing import Any

import aiohttp

from finappd.config import ProviderSettings
from finappd.providers.base import BaseProvider, make_session, redact_url
from finappd.providers.quota import QuotaLedger, UsageBackend
from finappd.providers.spec import ProviderSpec

__all__ = [
    "PROVIDER_KINDS",
    "BaseProvider",
    "ProviderSpec",
    "discover",
    "make_provider",
    "make_session",
    "provider_class",
    "redact_url",
]


def provider_class(kind: str) -> type[BaseProvider]:
    """The provider class of ``kind``; ValueError naming the known kinds if there is none."""
    try:
        return PROVIDER_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(PROVIDER_KINDS))
        raise ValueError(f"unknown provider kind {kind!r} (known: {known})") from None


def make_provider(
    name: str,
    settings: ProviderSettings,
    session: aiohttp.ClientSession,
    *,
    usage: UsageBackend | None = None,
    ledger: QuotaLedger | None = None,
) -> BaseProvider:
    """The provider called ``name``, of class ``PROVIDER_KINDS[settings.kind or name]``.

    ``usage`` persists its quota ledger (the runtime passes the store's); without it
    the daily and monthly quotas are kept in memory only. ``ledger`` is the quota
    ledger to count in (the runtime keeps one per provider name, so a rebuilt instance
    goes on spending the same budget); without it the provider makes its own.
    """
    cls = provider_class(settings.kind or name)
    return cls(name, settings, session, usage=usage, ledger=ledger)


def _declares(cls: type[BaseProvider], spec: ProviderSpec) -> bool:
    """Whether ``cls`` itself (not a base class) points at ``spec``."""
    return cls.__dict__.get("spec") is spec


def _provider_of(module: ModuleType) -> type[BaseProvider] | None:
    """The provider class ``module`` defines for its ``SPEC``, or None: not a provider module."""
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, ProviderSpec):
        return None
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, BaseProvider) and _declares(obj, spec)
    ]
    if len(classes) != 1:
        raise TypeError(f"{module.__name__}: SPEC needs exactly one provider class, not {classes}")
    return classes[0]


def discover(package: str, path: Iterable[str]) -> Mapping[str, type[BaseProvider]]:
    """Every provider kind of ``package`` (its modules on ``path``) → its class, by importing
    its public modules; a kind declared twice is a TypeError."""
    kinds: dict[str, type[BaseProvider]] = {}
    for info in pkgutil.iter_modules(path):
        if info.name.startswith("_"):
            continue
        cls = _provider_of(importlib.import_module(f"{package}.{info.name}"))
        if cls is None:
            continue
        if cls.kind in kinds:
            raise TypeError(f"provider kind {cls.kind!r} declared twice")
        kinds[cls.kind] = cls
    return MappingProxyType(dict(sorted(kinds.items())))


#: Provider kind (``providers.<name>.kind``, defaulting to the name) → class. Discovered
#: last: a module imported on the way (e.g. ``usage``) may import the functions above.
PROVIDER_KINDS: Mapping[str, type[BaseProvider]] = discover(__name__, __path__)
_CLASSES = {cls.__name__: cls for cls in PROVIDER_KINDS.values()}
__all__ += sorted(_CLASSES)  # the discovered provider classes are public too


def __getattr__(name: str) -> Any:
    """A discovered provider class by its class name (``from finappd.providers import …``)."""
    try:
        return _CLASSES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
