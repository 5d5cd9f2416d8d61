"""What the HTTP API needs of the daemon it serves (``finappd.scheduler.Daemon`` provides it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from finappd.api.board import RunBoard
from finappd.config import Settings
from finappd.providers import BaseProvider

__all__ = ["Control"]


class Control(Protocol):
    """The daemon as the API sees it: its config, its runs, its providers, a trigger."""

    @property
    def settings(self) -> Settings:
        """The configuration in use (a reload replaces it)."""
        ...

    @property
    def board(self) -> RunBoard:
        """The runs in progress and their progress events."""
        ...

    def alive(self) -> bool:
        """Whether the scheduler runs and no stop was asked for."""
        ...

    def live_providers(self) -> Mapping[str, BaseProvider]:
        """The provider instances in use, by name."""
        ...

    async def trigger_now(self, flow: str) -> int | None:
        """Start ``flow`` now unless it runs; its run's id, or None if it could not start."""
        ...
