"""Fan-out: ``finappd run-once`` vs a plain aiohttp + gather + semaphore client, same simulator.

N tickers against the simulator (its own process) answering in L seconds with at
most S requests in flight; finappd runs with ``max_concurrency = num_workers = S``
and a rate limit too high to bind, and its writes to SQLite are included. The floor
is ceil(N/S)·L. Prints one line per N with the ratio finappd / plain.

    python bench/fanout.py                 # N = 1k, 5k, 20k at L = 20 ms, S = 50, best of 2
    python bench/fanout.py --quick         # N = 200, for the test that keeps this runnable
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from _common import Sim, compare, parse_size_args, warm_up

SIZES = (1000, 5000, 20000)


def main() -> int:
    """Run the fan-out benchmark and print its table."""
    args = parse_size_args(
        __doc__.splitlines()[0],
        SIZES,
        limit_help="S: requests in flight",
        repeat=2,
        quick_help="N = 200 only",
        latency=True,
    )
    sizes, repeat, note = args.sizes, args.repeat, args.note
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
