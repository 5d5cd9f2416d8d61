"""finappd: a market-data ingestion daemon."""

__version__ = "0.1.0"
