"""What the ``Store`` mixins (bars, runs, usage) may use of the store they are mixed into."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

__all__ = ["StorePart"]


class StorePart:
    """A part of ``Store``: its path and its two connection guards, defined in ``store.py``."""

    path: Path

    if TYPE_CHECKING:  # implemented by Store; declared here so the parts type-check alone

        def _guard(self, operation: str) -> AbstractContextManager[sqlite3.Connection]: ...

        def _write(self, operation: str) -> AbstractContextManager[sqlite3.Connection]: ...
