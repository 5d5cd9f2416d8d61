"""Memory at scale: peak RSS of a 20k-ticker ``finappd run-once`` vs a 1-ticker one.

Results must stream from the lanes to the writer through a bounded queue, so the
peak should barely grow with N. Both runs go against the same simulator (its own
process); the peak is the child's ``ru_maxrss`` from ``wait4``. The baseline is the
1-ticker run in the same session: what importing and opening everything costs.

    python bench/memory.py             # N = 20k, simulator latency 0
    python bench/memory.py --quick     # N = 500
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _common import Sim, run_once, tickers, warm_up, write_config


def main() -> int:
    """Run the memory benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=20_000, help="N")
    parser.add_argument("--latency", type=float, default=0.0, help="simulator latency, seconds")
    parser.add_argument("--limit", type=int, default=50, help="S: requests in flight")
    parser.add_argument("--quick", action="store_true", help="N = 500")
    args = parser.parse_args()
    n = 500 if args.quick else args.tickers
    print(
        f"# memory: peak RSS of run-once, N = {n} vs 1, L = {args.latency * 1000:g} ms; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="finappd-bench-") as tmp,
        Sim(latency=args.latency, max_concurrency=args.limit) as sim,
    ):
        warm_up(sim, n, args.limit)
        peaks = {}
        for size in (1, n):
            config = write_config(
                Path(tmp) / f"n{size}",
                sim.url,
                {"bench": tickers(size)},
                limit=args.limit,
                workers=args.limit,
            )
            run = run_once(config, "bench")
            if run.summary["tickers_ok"] != size:
                raise RuntimeError(f"run was {run.summary}")
            peaks[size] = run.maxrss_mb
            print(
                f"memory n={size} peak_rss_mb={run.maxrss_mb:.1f} run_s={run.duration_s:.3f} "
                f"rows={run.summary['rows_written']} ratio={run.maxrss_mb / peaks[1]:.2f}",
                flush=True,
            )
        growth = (peaks[n] - peaks[1]) * 1024 * 1024 / max(n - 1, 1)
        print(f"memory growth_bytes_per_ticker={growth:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
