"""``finappd status``: the last runs per flow and row counts, read-only from the DB."""

from __future__ import annotations

import json
from dataclasses import asdict

from finappd.config import Settings
from finappd.store import Store

__all__ = ["print_status"]


def print_status(settings: Settings, *, as_json: bool) -> int:
    """Print the status (text or JSON); 0, or 1 when there is no database yet."""
    path = settings.store.resolved_path()
    if not path.exists():
        print(f"finappd: no database at {path} yet")
        return 1
    store = Store(path).open(readonly=True)
    try:
        runs = store.last_runs(limit=5)
        counts = store.bar_counts()
    finally:
        store.close()
    if as_json:
        data = {
            "store": str(path),
            "runs": [asdict(r) for r in runs],
            "bars": {"symbols": len(counts), "rows": sum(counts.values())},
        }
        print(json.dumps(data, default=str))
        return 0
    print(f"store: {path}  symbols: {len(counts)}  bars: {sum(counts.values())}")
    for r in runs:
        print(
            f"{r.flow:<20} #{r.id:<6} {r.status:<11} {r.started_at}  "
            f"ok {r.tickers_ok}/{r.tickers_total}  rows {r.rows_written}"
            + (f"  error: {r.error}" if r.error else "")
        )
    return 0
