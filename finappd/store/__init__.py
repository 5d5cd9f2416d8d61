"""The SQLite store: public schema, forward migrations, upserts, and the one writer thread."""

from finappd.store.runs import RUN_STATUSES
from finappd.store.schema import SCHEMA_VERSION
from finappd.store.store import RunRow, Store
from finappd.store.writer import Writer

__all__ = ["RUN_STATUSES", "SCHEMA_VERSION", "RunRow", "Store", "Writer"]
