"""Provider specs: each module's SPEC is its class's facts, discovered, and used where it says."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from finappd.providers import PROVIDER_KINDS, discover, provider_class
from finappd.providers._http import redact_url
from finappd.providers.spec import ProviderSpec
from finappd.providers.verdicts import Capability


@pytest.mark.parametrize("kind", sorted(PROVIDER_KINDS))
def test_the_class_carries_its_modules_spec(kind: str) -> None:
    """A provider class is its module's SPEC: same kind, and the politeness defaults from it."""
    cls = PROVIDER_KINDS[kind]
    spec = sys.modules[cls.__module__].SPEC
    assert cls.spec is spec
    assert isinstance(spec, ProviderSpec)
    assert (cls.kind, cls.capabilities, cls.requires_key) == (
        kind,
        spec.capabilities,
        spec.requires_key,
    )
    assert (cls.default_base_url, cls.default_limits, cls.headers) == (
        spec.base_url,
        spec.limits,
        spec.headers,
    )
    assert cls.max_range_days == spec.max_range_days


def test_every_module_with_a_spec_is_discovered() -> None:
    """The registry holds exactly the package's modules that declare a SPEC, by their kind."""
    modules = {cls.__module__.rsplit(".", 1)[1] for cls in PROVIDER_KINDS.values()}
    assert modules == set(PROVIDER_KINDS)  # each kind is named after its module
    for name in ("base", "limits", "quota", "usage", "spec", "yahoo_chart"):
        assert not hasattr(importlib.import_module(f"finappd.providers.{name}"), "SPEC")


def test_an_unknown_kind_names_the_known_ones() -> None:
    """Asking for a kind no module declares is a ValueError listing the kinds there are."""
    with pytest.raises(ValueError, match=r"unknown provider kind 'bloomberg' \(known: .*yahoo"):
        provider_class("bloomberg")


@pytest.mark.parametrize(
    "param", sorted({p for cls in PROVIDER_KINDS.values() for p in cls.spec.secret_params})
)
def test_every_declared_secret_param_is_redacted(param: str) -> None:
    """Each secret query parameter a spec declares is blanked in URLs, in any case."""
    for name in (param, param.upper()):
        url = f"https://api.example/x?symbol=A&{name}=s3cret&b=2"
        assert redact_url(url) == f"https://api.example/x?symbol=A&{name}=REDACTED&b=2"


def test_every_daily_bar_provider_declares_its_close_basis() -> None:
    """A provider of daily bars says whether its closes are as traded or split-adjusted."""
    for kind, cls in PROVIDER_KINDS.items():
        if Capability.DAILY_BARS in cls.spec.capabilities:
            assert cls.spec.adjustment in ("none", "split"), kind


ACME = """
from finappd.providers.base import BaseProvider, Capability, Limits
from finappd.providers.spec import ProviderSpec

SPEC = ProviderSpec(
    kind="acme",
    capabilities=frozenset({Capability.QUOTE}),
    base_url="https://api.acme.example",
    limits=Limits(max_concurrency=1, rates=("2/second",)),
    secret_params=frozenset({"acme_key"}),
)


class AcmeProvider(BaseProvider):
    spec = SPEC
"""


def test_a_new_provider_is_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package holding one module with a SPEC and its class is discovered, nothing else
    named; helper modules and private ones are skipped, and its secret param is redacted."""
    package = tmp_path / "extra_providers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "acme.py").write_text(ACME)
    (package / "helpers.py").write_text("VALUE = 1\n")
    (package / "_private.py").write_text("raise RuntimeError('never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    kinds = discover("extra_providers", [str(package)])
    assert list(kinds) == ["acme"]
    acme = kinds["acme"]
    assert (acme.__name__, acme.default_base_url) == ("AcmeProvider", "https://api.acme.example")
    assert redact_url("https://x/q?acme_key=k") == "https://x/q?acme_key=REDACTED"


def test_a_spec_without_its_class_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module declaring SPEC but no class pointing at it is a TypeError, not a silent skip."""
    package = tmp_path / "broken_providers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "half.py").write_text(ACME.replace("    spec = SPEC", "    pass"))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match="exactly one provider class"):
        discover("broken_providers", [str(package)])


#: The demo's provider and the ticker convention (``BRK-B``, ``^GSPC``) are Yahoo's, so
#: its name stands in docstrings and the demo config; every other kind lives only in its
#: own two modules.
CONVENTION_KIND = "yahoo"


@pytest.mark.parametrize("kind", sorted(set(PROVIDER_KINDS) - {CONVENTION_KIND}))
def test_no_file_but_its_two_modules_names_a_provider(kind: str) -> None:
    package = Path(importlib.import_module("finappd").__file__ or "").parent
    naming = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if kind in path.read_text(encoding="utf-8").lower()
    }
    assert naming == {f"providers/{kind}.py", f"sim/{kind}.py"}
