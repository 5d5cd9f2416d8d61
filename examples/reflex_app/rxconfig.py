"""Reflex's config for the example finance app (``reflex run`` reads it)."""

import reflex as rx
from reflex_base.plugins.sitemap import SitemapPlugin

config = rx.Config(
    app_name="finance_app",
    telemetry_enabled=False,
    disable_plugins=[SitemapPlugin],  # one page: no sitemap
)
