"""Simulated market-data APIs (aiohttp.web on localhost), one module per API's wire format.

For the demo, end-to-end tests, benchmarks and fault tests: deterministic prices
per symbol, configurable latency, concurrency cap and rate limit (plain-text 429
with ``Retry-After``), each API's own limits, keys, unknown and null-bar symbols and
faults (:mod:`finappd.sim.routes`), and counters that prove a client never exceeded
its limits.
"""

from finappd.sim.config import SimConfig, SimStats
from finappd.sim.prices import synthetic_bars
from finappd.sim.server import SimServer, serve

__all__ = ["SimConfig", "SimServer", "SimStats", "serve", "synthetic_bars"]
