"""Answers recorded by others (tests/fixtures/recorded), with their provenance and expectations.

Each answer is a body file (``.json``, ``.csv``, ``.txt`` or ``.html``) beside a sidecar
``<name>.provenance.toml`` naming where it was published (repository, path, commit, licence),
the request it answers, its HTTP status, what was trimmed, and ``[[expected]]`` tables: what
our providers must make of it, written by hand from the payload (never computed by our code).
This module holds no tests of its own.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PROVIDERS", "RECORDED", "REQUIRED_FIELDS", "Recorded", "load", "load_all"]

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
PROVIDERS = (
    "yahoo",
    "stooq",
    "alphavantage",
    "finnhub",
    "polygon",
    "tiingo",
    "twelvedata",
    "coingecko",
    "frankfurter",
)
REQUIRED_FIELDS = ("repository", "path", "licence", "request", "status", "answer", "trimmed")
_CONTENT_TYPES = {
    ".json": "application/json",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".html": "text/html",
}
_SIDECAR = ".provenance.toml"


@dataclass(frozen=True, slots=True)
class Recorded:
    """One recorded answer: its body, status, provenance and the expectations on it."""

    provider: str
    name: str
    body: str
    content_type: str
    status: int
    provenance: dict[str, Any]
    expected: list[dict[str, Any]]

    @property
    def id(self) -> str:
        """``provider/name``, the answer's test id."""
        return f"{self.provider}/{self.name}"


def _body_of(sidecar: Path) -> Path:
    stem = sidecar.name.removesuffix(_SIDECAR)
    found = [p for p in sidecar.parent.glob(f"{stem}.*") if p.suffix in _CONTENT_TYPES]
    if len(found) != 1:
        raise FileNotFoundError(f"{sidecar}: expected one body file, found {found}")
    return found[0]


def load(provider: str) -> list[Recorded]:
    """Every recorded answer of ``provider``, sorted by name."""
    answers: list[Recorded] = []
    for sidecar in sorted((RECORDED / provider).glob(f"*{_SIDECAR}")):
        body = _body_of(sidecar)
        provenance = tomllib.loads(sidecar.read_text(encoding="utf-8"))
        answers.append(
            Recorded(
                provider=provider,
                name=body.stem,
                body=body.read_text(encoding="utf-8"),
                content_type=_CONTENT_TYPES[body.suffix],
                status=int(provenance["status"]),
                provenance=provenance,
                expected=list(provenance.get("expected", [])),
            )
        )
    return answers


def load_all() -> list[Recorded]:
    """Every recorded answer of every provider."""
    return [answer for provider in PROVIDERS for answer in load(provider)]
