"""Fan-out: ``finappd run-once`` vs a plain aiohttp + gather + semaphore client, same simulator.

N tickers against the simulator (its own process) answering in L seconds with at
most S requests in flight; finappd runs with ``max_concurrency = num_workers = S``
and a rate limit too high to bind, and its writes to SQLite are included. The floor
is ceil(N/S)·L. Prints one line per N with the ratio finappd / plain.

    python bench/fanout.py                 # N = 1k, 5k, 20k at L = 20 ms, S = 50
    python bench/fanout.py --quick         # N = 200, for the test that keeps this runnable
"""

from __future__ import annotations

import argparse
import math
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
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    parser.add_argument("--quick", action="store_true", help="N = 200 only")
    args = parser.parse_args()
    sizes = [200] if args.quick else [int(s) for s in args.sizes.split(",")]
    print(f"# fan-out: L = {args.latency * 1000:g} ms, S = {args.limit}, best of {args.repeat}")
    with (
        tempfile.TemporaryDirectory(prefix="finappd-bench-") as tmp,
        Sim(latency=args.latency, max_concurrency=args.limit) as sim,
    ):
        warm = warm_up(sim, max(sizes), args.limit)
        print(f"# simulator warm-up over {max(sizes)} tickers: {warm:.3f} s", flush=True)
        for n in sizes:
            c = compare(sim, Path(tmp), n, limit=args.limit, repeat=args.repeat)
            floor = math.ceil(n / args.limit) * args.latency
            print(
                f"fanout n={n} latency_ms={args.latency * 1000:g} limit={args.limit} "
                f"floor_s={floor:.3f} plain_s={c.plain.wall_s:.3f} "
                f"finappd_s={c.finappd.duration_s:.3f} ratio={c.ratio:.3f} "
                f"rows={c.finappd.summary['rows_written']} "
                f"rejected_429={c.sim_stats['rejected_429']} "
                f"cpu_plain_s={c.plain.cpu_s:.2f} cpu_finappd_s={c.finappd.cpu_s:.2f} "
                f"sim_cpu_plain_s={c.plain_sim_cpu_s:.2f} "
                f"sim_cpu_finappd_s={c.finappd_sim_cpu_s:.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
