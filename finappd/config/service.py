"""The daemon's service sections: the local HTTP API (``[api]``) and notifications (``[notify]``).

``[api] listen`` is ``"unix:/run/finappd/api.sock"``, ``"127.0.0.1:8790"`` (``"[::1]:8790"``)
or ``""`` (off). Unset, it is ``unix:$RUNTIME_DIRECTORY/api.sock`` under systemd
(``RuntimeDirectory=finappd``) and off elsewhere. On TCP every request but ``/healthz``
and ``/metrics`` needs ``Authorization: Bearer <token>``; the token comes from
``$CREDENTIALS_DIRECTORY/api_token`` or ``FINAPPD_API__TOKEN``. On a Unix socket the
file's permissions (owner and group) are the access control.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from finappd.config.values import Duration

__all__ = ["ApiSettings", "Listen", "NotifySettings", "parse_listen"]

_TCP = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>\d{1,5})$")


@dataclass(frozen=True, slots=True)
class Listen:
    """Where the API listens: a Unix socket ``path``, or TCP ``host`` and ``port``."""

    path: Path | None = None
    host: str = ""
    port: int = 0

    @property
    def tcp(self) -> bool:
        """Whether this is a TCP address (a token is then required)."""
        return self.path is None

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> Listen | None:
    """``unix:PATH``, ``HOST:PORT`` or ``[V6]:PORT`` as a :class:`Listen`; ``""`` is None."""
    if not text:
        return None
    if text.startswith("unix:"):
        path = Path(text.removeprefix("unix:"))
        if not path.is_absolute():
            raise ValueError(f"expected an absolute socket path after 'unix:', got {text!r}")
        return Listen(path=path)
    match = _TCP.match(text)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"expected 'unix:/path', 'host:port' or '', got {text!r}")
    return Listen(host=match["v6"] or match["host"], port=int(match["port"]))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiSettings(_Model):
    """The local HTTP API: health, metrics, status, trigger a run, its progress."""

    listen: str | None = None  # None: under systemd's $RUNTIME_DIRECTORY, else off
    token: SecretStr | None = None
    # A client's (``finappd trigger``) connect and answer timeout; the server's per-request bound.
    timeout: Duration = timedelta(seconds=10)

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value

    def address(self) -> Listen | None:
        """Where to listen (or connect), or None when the API is off."""
        if self.listen is not None:
            return parse_listen(self.listen)
        runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
        return Listen(path=Path(runtime) / "api.sock") if runtime else None


class NotifySettings(_Model):
    """Messages when a flow goes stale or keeps failing, a key is refused or a quota spent."""

    urls: list[SecretStr] = Field(default_factory=list)  # Apprise URLs (they embed tokens)
    ping_url: SecretStr | None = None  # a dead-man's switch hit after each good run
    failed_runs: int = Field(default=3, ge=1, le=1000)  # failed runs in a row that alarm
    check_every: Duration = timedelta(seconds=60)  # how often staleness is looked at
    timeout: Duration = timedelta(seconds=10)  # per message and per ping

    @field_validator("ping_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value.get_secret_value()):
            raise ValueError("expected an http(s) URL")
        return value
