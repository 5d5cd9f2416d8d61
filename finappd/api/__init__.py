"""The daemon's local HTTP API (aiohttp.web): health, Prometheus metrics, status, trigger a run,
and its progress as server-sent events. Paths and auth: :mod:`finappd.api.routes`."""

from finappd.api.board import RunBoard
from finappd.api.control import Control
from finappd.api.server import ApiServer

__all__ = ["ApiServer", "Control", "RunBoard"]
