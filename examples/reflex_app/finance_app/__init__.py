"""The example finance app: a "Refresh prices" button driving finappd, and the latest closes."""
