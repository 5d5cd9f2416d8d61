"""The page: a "Refresh prices" button, the run's live progress, the latest closes."""

from __future__ import annotations

import asyncio

import reflex as rx

from finance_app import prices


class PricesState(rx.State):
    """The refresh's progress and the closes shown."""

    running: bool = False
    via: str = ""
    run_id: int = 0
    done: int = 0
    total: int = 0
    failed: int = 0
    status: str = ""
    error: str = ""
    closes: list[dict[str, str]] = []  # noqa: RUF012 (Reflex state vars are declared so)
    updates: int = 0  # progress events received, shown as a heartbeat

    @rx.event(background=True)
    async def refresh(self) -> None:
        """Start the flow (through the daemon when it runs) and follow it to its end."""
        async with self:
            if self.running:
                return  # one refresh at a time; the daemon would join it anyway
            self.running, self.error, self.status = True, "", "starting"
            self.done = self.total = self.failed = self.updates = 0
        try:
            async for event in prices.refresh():
                async with self:
                    self.via = event["via"]
                    self.run_id = event["run_id"]
                    self.done = event["tickers_ok"] + event["tickers_failed"]
                    self.failed = event["tickers_failed"]
                    self.total = event["tickers_total"]
                    self.status = event["status"]
                    self.updates += 1
        except Exception as exc:  # shown to the user; the run itself is recorded by finappd
            async with self:
                self.error = f"{type(exc).__name__}: {exc}"
        closes = await asyncio.to_thread(prices.latest_closes)
        async with self:
            self.closes = closes
            self.running = False

    @rx.event
    async def load(self) -> None:
        """Show the stored closes when the page opens."""
        self.closes = await asyncio.to_thread(prices.latest_closes)


def close_row(row: rx.Var[dict[str, str]]) -> rx.Component:
    """One symbol's latest close."""
    return rx.table.row(
        rx.table.cell(row["symbol"]), rx.table.cell(row["date"]), rx.table.cell(row["close"])
    )


def index() -> rx.Component:
    """The page."""
    return rx.container(
        rx.heading("Prices"),
        rx.hstack(
            rx.button("Refresh prices", on_click=PricesState.refresh, loading=PricesState.running),
            rx.text(
                PricesState.status,
                " ",
                PricesState.done,
                "/",
                PricesState.total,
                rx.cond(PricesState.failed > 0, f" ({PricesState.failed} failed)", ""),
                rx.cond(PricesState.via != "", f" via {PricesState.via}", ""),
            ),
        ),
        rx.progress(value=PricesState.done, max=PricesState.total),
        rx.cond(PricesState.error != "", rx.callout(PricesState.error, color_scheme="red")),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("Symbol"),
                    rx.table.column_header_cell("Date"),
                    rx.table.column_header_cell("Close"),
                )
            ),
            rx.table.body(rx.foreach(PricesState.closes, close_row)),
        ),
    )


app = rx.App()
app.add_page(index, on_load=PricesState.load, title="Prices")
