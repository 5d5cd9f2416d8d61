"""Helpers shared by the provider tests (this module holds no tests of its own)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import aiohttp
import yarl
from aioresponses import aioresponses

__all__ = ["mock_http"]


class _SentWriter:
    """Stands in for the request writer of a response whose request is already sent."""

    output_size = 0


class _CompatClientResponse(aiohttp.ClientResponse):
    """A ClientResponse that aioresponses 0.7.9 can build on aiohttp >= 3.14."""

    def __init__(self, method: str, url: yarl.URL, **kwargs: Any) -> None:
        # aiohttp 3.14 added a required ``stream_writer`` that aioresponses does not pass
        # (pnuckowski/aioresponses#289, still open).
        kwargs.setdefault("stream_writer", _SentWriter())
        super().__init__(method, url, **kwargs)


_NEEDS_SHIM = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters


@contextmanager
def mock_http() -> Iterator[aioresponses]:
    """An ``aioresponses`` mock that works with the installed aiohttp."""
    with aioresponses() as mocked:
        if not _NEEDS_SHIM:
            yield mocked
            return
        with mock.patch("aioresponses.core.ClientResponse", _CompatClientResponse):
            yield mocked
