"""Engine overhead: microseconds per ticker finappd spends above a plain client, at latency 0.

Two measurements, each against its own baseline in the same run:

- ``engine``: the fan-out machinery alone, in this process: ``run_flow_once`` (the
  LlamaIndex workflow with its lanes, the bounded results queue, the writer task and
  thread, the ``runs`` row, metrics) over a fetch that only yields to the loop, vs
  ``asyncio.gather`` + ``Semaphore(S)`` over the same fetch. This is what the engine
  itself costs per ticker: the methodology of the issue's engine table.
- ``end-to-end``: ``finappd run-once`` vs the plain aiohttp client against the
  simulator at latency 0 (bench/fanout.py at L = 0): the engine plus everything a
  real run does per ticker that a plain fetch does not (politeness, JSON parsing,
  bar records, SQLite upserts, logging).

    python bench/engine.py              # N = 1k, 5k
    python bench/engine.py --quick      # N = 200
    python bench/engine.py --instructions --sizes 420   # end-to-end, counted by valgrind

``--instructions`` counts, instead of timing, the instructions per ticker of both clients
end to end: each one's count at N less its count at N = 20, over N - 20, so start-up and
per-run costs cancel. On a shared box CPU times vary by 20 % from one run to the next;
the counts by 1 to 3 %.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from _common import Sim, compare, instructions, parse_size_args, tickers, warm_up, write_config

from finappd.flows import TickerResult, run_flow_once
from finappd.logging import configure_logging
from finappd.providers import BaseProvider
from finappd.store import Store, Writer

SIZES = (1000, 5000)
#: ``--instructions``: the size each count is taken against.
BASE_N = 20

# The plain client of the end-to-end comparison, alone in a process (for valgrind).
_PLAIN_CLIENT = """\
import sys
sys.path.insert(0, "bench")
from _common import chart_urls, plain_fetch, tickers
url, n, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
assert plain_fetch(chart_urls(url, tickers(n)), limit).ok == n
"""


class _NoProvider:
    """Stands in for the provider a run reports on; the fetch below never calls it."""

    name = "none"

    def metrics(self) -> dict[str, Any]:
        """No figures: nothing was requested."""
        return {"provider": self.name}


async def _yield_fetch(symbol: str) -> TickerResult:
    """A fetch that costs nothing but one trip through the event loop."""
    await asyncio.sleep(0)
    return TickerResult(symbol, "none")


async def plain_engine(symbols: list[str], limit: int) -> float:
    """Seconds for gather + semaphore over ``_yield_fetch`` of every symbol."""
    semaphore = asyncio.Semaphore(limit)

    async def one(symbol: str) -> TickerResult:
        async with semaphore:
            return await _yield_fetch(symbol)

    started = time.perf_counter()
    await asyncio.gather(*(one(s) for s in symbols))
    return time.perf_counter() - started


async def finappd_engine(symbols: list[str], limit: int, db: Path) -> float:
    """Seconds for ``run_flow_once`` over ``_yield_fetch`` of every symbol, writer included."""
    with Store(db) as store:
        writer = Writer(store)
        try:
            started = time.perf_counter()
            summary = await run_flow_once(
                flow="bench",
                trigger="manual",
                tickers=symbols,
                num_workers=limit,
                deadline=600,
                fetch=_yield_fetch,
                providers=[cast(BaseProvider, _NoProvider())],
                store=store,
                writer=writer,
            )
            elapsed = time.perf_counter() - started
        finally:
            writer.close()
    if summary.tickers_ok != len(symbols):
        raise RuntimeError(f"engine run was {summary}")
    return elapsed


def engine_only(sizes: list[int], limit: int, repeat: int, workdir: Path) -> None:
    """Print the engine-only figures for each size."""
    # The run's own log lines are rendered as in the daemon, but not shown here.
    configure_logging("info", "json", stream=open(os.devnull, "w"))  # noqa: SIM115
    # One untimed run first: building the workflow class and first-use caches is start-up.
    asyncio.run(finappd_engine(tickers(limit), limit, workdir / "engine-warm-up.sqlite3"))
    for n in sizes:
        symbols = tickers(n)
        plain = finappd = float("inf")
        for i in range(repeat):
            gc.collect()
            plain = min(plain, asyncio.run(plain_engine(symbols, limit)))
            gc.collect()
            db = workdir / f"engine-{n}-{i}.sqlite3"
            finappd = min(finappd, asyncio.run(finappd_engine(symbols, limit, db)))
        print(
            f"engine part=engine-only n={n} limit={limit} plain_s={plain:.4f} "
            f"finappd_s={finappd:.4f} ratio={finappd / plain:.2f} "
            f"overhead_us_per_ticker={(finappd - plain) / n * 1e6:.1f}",
            flush=True,
        )


def counted(sim: Sim, workdir: Path, sizes: list[int], limit: int) -> None:
    """Print each size's instructions per ticker of the plain client and of ``run-once``."""

    def plain(n: int) -> int:
        return instructions([sys.executable, "-c", _PLAIN_CLIENT, sim.url, str(n), str(limit)])

    def finappd(n: int) -> int:
        config = write_config(
            workdir / f"i{n}", sim.url, {"bench": tickers(n)}, limit=limit, workers=limit
        )
        return instructions(
            [sys.executable, "-m", "finappd", "--config", str(config), "run-once", "bench"]
        )

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # one core per count
        base = {
            name: pool.submit(count, BASE_N)
            for name, count in (("plain", plain), ("finappd", finappd))
        }
        for n in sizes:
            plain_n, finappd_n = pool.submit(plain, n), pool.submit(finappd, n)
            per = {
                name: (done.result() - base[name].result()) / (n - BASE_N) / 1e6
                for name, done in (("plain", plain_n), ("finappd", finappd_n))
            }
            print(
                f"engine part=instructions n={n} limit={limit} base_n={BASE_N} "
                f"plain_minstr_per_ticker={per['plain']:.3f} "
                f"finappd_minstr_per_ticker={per['finappd']:.3f} "
                f"ratio={per['finappd'] / per['plain']:.2f}",
                flush=True,
            )


def main() -> int:
    """Run the engine-overhead benchmark and print its table."""
    args = parse_size_args(
        __doc__.splitlines()[0],
        SIZES,
        limit_help="S = num_workers",
        repeat=3,
        quick_help="N = 200, once",
        instructions=True,
    )
    sizes, repeat, note = args.sizes, args.repeat, args.note
    if args.instructions and args.skip_usage_writes:
        raise SystemExit("--instructions counts run-once as it is: no --skip-usage-writes")
    how = f"instructions (valgrind) at N less at N = {BASE_N}" if args.instructions else None
    print(
        f"# engine overhead: L = 0, S = {args.limit}, {how or f'best of {repeat}'}{note}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="finappd-bench-") as tmp:
        if args.instructions:
            with Sim(latency=0.0, max_concurrency=args.limit) as sim:
                warm_up(sim, max(sizes), args.limit)
                counted(sim, Path(tmp), [n for n in sizes if n > BASE_N], args.limit)
            return 0
        engine_only(sizes, args.limit, repeat, Path(tmp))
        with Sim(latency=0.0, max_concurrency=args.limit) as sim:
            warm_up(sim, max(sizes), args.limit)
            for n in sizes:
                c = compare(
                    sim,
                    Path(tmp),
                    n,
                    limit=args.limit,
                    repeat=repeat,
                    skip_usage_writes=args.skip_usage_writes,
                )
                print(f"engine part=end-to-end n={n} limit={args.limit} {c.figures()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
