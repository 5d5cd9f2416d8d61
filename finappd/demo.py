"""``finappd demo``: the simulator, a demo config, the daemon, and a DB to open with sqlite3.

Everything is local: the simulator listens on a free loopback port, no API key
is needed and nothing leaves the machine.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import structlog

from finappd.scheduler import Daemon
from finappd.sim import SimConfig, SimServer
from finappd.validate import load_checked

__all__ = ["DEMO_TICKERS", "demo_config", "run_demo"]

log = structlog.get_logger(__name__)

#: ~50 symbols across exchanges, share classes, an index, FX and crypto.
DEMO_TICKERS = (
    *("AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "BRK-B", "JPM", "V", "JNJ"),
    *("WMT", "PG", "MA", "UNH", "HD", "XOM", "CVX", "KO", "PEP", "COST", "ABBV", "MRK"),
    *("AVGO", "ORCL", "CSCO", "ADBE", "CRM", "NFLX", "INTC", "AMD", "QCOM", "TXN", "IBM"),
    *("DIS", "NKE", "MCD", "^GSPC", "^DJI", "^IXIC", "7203.T", "6758.T", "VOD.L", "HSBA.L"),
    *("BHP.AX", "CBA.AX", "SHOP.TO", "RY.TO", "BTC-USD", "EURUSD=X"),
)


def demo_config(sim_url: str, db: Path) -> str:
    """The demo's TOML: one flow over every demo ticker, every 5 s, against the simulator."""
    tickers = ", ".join(f'"{t}"' for t in DEMO_TICKERS)
    return f"""\
# Written by `finappd demo`: the simulator at {sim_url} only lives while the demo runs.
[store]
path = "{db}"

[logging]
format = "json"

[providers.yahoo]
base_url = "{sim_url}"
max_concurrency = 4
rate = "1200/minute"
read_timeout = "5s"

[[flows]]
name = "demo-eod"
kind = "daily_bars"
provider = "yahoo"
tickers = [{tickers}]
every = "5s"
deadline = "4s"
num_workers = 10
lookback_days = 30
"""


async def run_demo(seconds: float, db: Path) -> int:
    """Run the daemon against the simulator for ``seconds``; 0 if one run was ok.

    ``db`` must be absolute: the demo config written next to it names it.
    """
    async with SimServer(SimConfig(latency=0.02, max_concurrency=8)) as sim:
        assert sim.url is not None
        config_path = db.with_suffix(".toml")
        config_path.write_text(demo_config(sim.url, db), encoding="utf-8")
        settings = load_checked(config_path)
        log.info("demo.started", simulator=sim.url, config=str(config_path), seconds=seconds)
        await Daemon(settings, stop_after=seconds).run()
        peak = sim.stats.peak_in_flight
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        ok_runs = conn.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0]
        symbols = conn.execute("SELECT count(DISTINCT symbol) FROM bars").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM bars").fetchone()[0]
    log.info(
        "demo.finished",
        db=str(db),
        runs_ok=ok_runs,
        symbols=symbols,
        bars=rows,
        simulator_peak_in_flight=peak,
        open_with=f"sqlite3 -readonly {db}",
    )
    return 0 if ok_runs else 1
