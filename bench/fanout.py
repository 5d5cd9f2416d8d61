"""Fan-out: ``finappd run-once`` vs a plain aiohttp + gather + semaphore client, same simulator.

N tickers against the simulator (its own process) answering in L seconds with at
most S requests in flight; finappd runs with ``max_concurrency = num_workers = S``
and a rate limit too high to bind, and its writes to SQLite are included. The floor
is ceil(N/S)·L. Prints one line per N with the ratio finappd / plain.

    python bench/fanout.py                 # N = 1k, 5k, 20k at L = 20 ms, S = 50, best of 2
    python bench/fanout.py --quick         # N = 200, for the test that keeps this runnable
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

from _common import Sim, compare, warm_up

SIZES = (1000, 5000, 20000)


def main() -> int:
    """Run the fan-out benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated N")
    parser.add_argument("--latency", type=float, default=0.020, help="simulator latency, seconds")
    parser.add_argument("--limit", type=int, default=50, help="S: requests in flight")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    parser.add_argument("--quick", action="store_true", help="N = 200 only")
    parser.add_argument(
        "--skip-usage-writes",
        action="store_true",
        help="diagnostic: the quota ledger does not await its SQLite write per request",
    )
    args = parser.parse_args()
    sizes = [200] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeat = 1 if args.quick else args.repeat
    note = ", usage writes skipped (diagnostic)" if args.skip_usage_writes else ""
    print(
        f"# fan-out: L = {args.latency * 1000:g} ms, S = {args.limit}, best of {repeat}"
        f"{note}; load average {os.getloadavg()[0]:.2f}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="finappd-bench-") as tmp,
        Sim(latency=args.latency, max_concurrency=args.limit) as sim,
    ):
        warm = warm_up(sim, max(sizes), args.limit)
        print(f"# simulator warm-up over {max(sizes)} tickers: {warm:.3f} s", flush=True)
        for n in sizes:
            c = compare(
                sim,
                Path(tmp),
                n,
                limit=args.limit,
                repeat=repeat,
                skip_usage_writes=args.skip_usage_writes,
            )
            floor = math.ceil(n / args.limit) * args.latency
            over = f"{c.finappd.duration_s / floor:.3f}" if floor else "-"
            print(
                f"fanout n={n} latency_ms={args.latency * 1000:g} limit={args.limit} "
                f"floor_s={floor:.3f} finappd_over_floor={over} {c.figures()}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
