"""``python -m finappd``."""

from finappd.cli import main

raise SystemExit(main())
