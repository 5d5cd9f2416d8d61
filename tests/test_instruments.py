"""Instruments: rows built from what answers carry, config overrides, rule 8 on write, delisting."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from finappd import instruments
from finappd.config import Settings, load_settings
from finappd.config.instruments import InstrumentSettings
from finappd.errors import ConfigError
from finappd.instruments import InstrumentBook, from_ticker, fx_pairs_needed, instrument_type, merge
from finappd.providers.twelvedata import series_info
from finappd.providers.yahoo_chart import chart_info
from finappd.records import Bar, InstrumentInfo
from finappd.runtime import Runtime
from finappd.status import print_status
from finappd.store import Store
from finappd.store.instruments import Instrument, read_instruments
from tests.conftest import MakeServer, one_flow

NOW = datetime(2025, 3, 12, 21, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ticker", "kind", "currency"),
    [
        ("BTC-USD", "crypto", "USD"),
        ("ETH-EUR", "crypto", "EUR"),
        ("EURUSD=X", "fx", "USD"),
        ("JPY=X", "fx", "JPY"),
        ("EUR/GBP", "fx", "GBP"),
        ("^GSPC", "index", None),
        ("GC=F", "future", None),
        ("BRK-B", None, None),
        ("VOD.L", None, None),
    ],
)
def test_from_ticker_reads_pairs_indices_and_futures(
    ticker: str, kind: str | None, currency: str | None
) -> None:
    """Crypto and FX pairs carry type and currency in the ticker; a share class does not."""
    row = from_ticker(ticker)
    assert (row.type, row.currency) == (kind, currency)


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("EQUITY", "equity"),
        ("ETF", "etf"),
        ("MUTUALFUND", "fund"),
        ("INDEX", "index"),
        ("CURRENCY", "fx"),
        ("CRYPTOCURRENCY", "crypto"),
        ("FUTURE", "future"),
        ("Common Stock", "equity"),
        ("Digital Currency", "crypto"),
        ("OPTION", None),
    ],
)
def test_instrument_type_maps_providers_words(word: str, kind: str | None) -> None:
    """Yahoo's instrumentType and Twelve Data's type map onto the seven instrument types."""
    assert instrument_type(word) == kind


def test_chart_meta_and_twelvedata_meta_become_instrument_info() -> None:
    """Yahoo's meta and Twelve Data's meta give unit, name, type, venue and timezone."""
    yahoo = chart_info(
        {
            "currency": "GBp",
            "exchangeName": "LSE",
            "instrumentType": "EQUITY",
            "exchangeTimezoneName": "Europe/London",
            "longName": "Vodafone Group Public Limited Company",
            "shortName": "VODAFONE GROUP",
        }
    )
    assert yahoo == InstrumentInfo(
        currency="GBp",
        name="Vodafone Group Public Limited Company",
        instrument_type="EQUITY",
        exchange="LSE",
        timezone="Europe/London",
    )
    twelve = series_info(
        {
            "meta": {
                "symbol": "AAPL",
                "currency": "USD",
                "exchange_timezone": "America/New_York",
                "exchange": "NASDAQ",
                "mic_code": "XNGS",
                "type": "Common Stock",
            }
        }
    )
    assert twelve == InstrumentInfo(
        currency="USD",
        instrument_type="Common Stock",
        exchange="NASDAQ",
        mic="XNGS",
        timezone="America/New_York",
    )
    words = {"currency_base": "Euro", "currency_quote": "US Dollar", "type": "Physical Currency"}
    pair = series_info({"meta": {"symbol": "EUR/USD", **words}})
    assert pair is not None
    assert (pair.currency, pair.instrument_type) == (
        "USD",
        "Physical Currency",
    )


def test_merge_layers_ticker_stored_answer_then_config() -> None:
    """The config beats the answer, which beats the stored row, which beats the ticker."""
    stored = Instrument("VOD.L", name="old name", isin="GB00BH4HKS39", provider="stooq")
    answer = Instrument("VOD.L", name="Vodafone", type="equity", exchange="XLON", currency="GBP")
    declared = InstrumentSettings(name="Vodafone Group", exchange="XLON")
    row = merge("VOD.L", stored=stored, answer=answer, declared=declared)
    assert row == Instrument(
        "VOD.L",
        name="Vodafone Group",
        type="equity",
        exchange="XLON",
        currency="GBP",
        isin="GB00BH4HKS39",
        provider="stooq",
    )


def test_fx_pairs_needed_skips_pairs_already_listed_either_way() -> None:
    """Every instrument currency gets its pair into the base, unless a ticker already has it."""
    needed = fx_pairs_needed(["USD/JPY", "EURUSD=X"], {"EUR", "JPY", "GBP", "USD"}, "USD")
    assert needed == ["GBP/USD"]


def test_config_validates_instrument_declarations(tmp_path: Path) -> None:
    """A bad MIC, ISIN or currency in [instruments] is one ConfigError naming the key."""
    config = tmp_path / "c.toml"
    for body, key in [
        ('[instruments."VOD.L"]\nexchange = "LSE"', "instruments.VOD.L.exchange"),
        ('[instruments."VOD.L"]\nisin = "GB00"', "instruments.VOD.L.isin"),
        ('[instruments."VOD.L"]\ncurrency = "pence"', "instruments.VOD.L.currency"),
        ('base_currency = "GBp"', "base_currency"),
    ]:
        config.write_text(body, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_settings(config)
        assert info.value.key == key
    config.write_text('base_currency = "EUR"\n[instruments."VOD.L"]\ncurrency = "GBp"\n')
    assert load_settings(config).instruments["VOD.L"].currency == "GBp"


def _bars(
    closes: list[float], currency: str | None, info: InstrumentInfo | None = None
) -> list[Bar]:
    return [
        Bar(
            "VOD.L",
            date(2025, 3, 3 + i),
            None,
            None,
            None,
            c,
            None,
            None,
            currency=currency,
            info=info,
        )
        for i, c in enumerate(closes)
    ]


def test_settle_converts_records_and_lets_the_config_override(tmp_path: Path) -> None:
    """Pence become pounds (GBP); the row has the answer's facts and the config's name and ISIN."""
    info = chart_info(
        {
            "currency": "GBp",
            "exchangeName": "LSE",
            "instrumentType": "EQUITY",
            "exchangeTimezoneName": "Europe/London",
            "shortName": "VODAFONE",
        }
    )
    book = InstrumentBook({"VOD.L": InstrumentSettings(isin="GB00BH4HKS39", name="Vodafone")})
    with Store(tmp_path / "s.sqlite3") as store:
        with store.transaction():
            stored = book.settle(store, "VOD.L", "yahoo", _bars([72.0, 72.4], "GBp", info), NOW)
        assert [(b.close, b.currency) for b in stored] == [(0.72, "GBP"), (72.4 / 100, "GBP")]
        row = read_instruments(store)["VOD.L"]
    assert row == Instrument(
        "VOD.L",
        name="Vodafone",
        type="equity",
        exchange="XLON",
        exchange_timezone="Europe/London",
        currency="GBP",
        quoted_unit="GBp",
        isin="GB00BH4HKS39",
        provider="yahoo",
    )


def test_a_unit_label_that_flips_is_caught_and_logged(tmp_path: Path) -> None:
    """An answer labelled GBP whose numbers are pence is stored in pounds, with a warning."""
    book = InstrumentBook()
    with Store(tmp_path / "s.sqlite3") as store:
        first = book.settle(store, "VOD.L", "yahoo", _bars([72.0, 72.4], "GBp"), NOW)
        store.write_bars(first, provider="yahoo", fetched_at=NOW)
        with capture_logs() as logs:
            second = book.settle(store, "VOD.L", "yahoo", _bars([72.5, 72.6, 72.8], "GBP"), NOW)
    assert [b.close for b in second] == [72.5 / 100, 72.6 / 100, 72.8 / 100]
    [event] = [e for e in logs if e["event"] == "bars.unit"]
    assert event["symbol"] == "VOD.L"
    assert event["log_level"] == "warning"
    assert event["reason"].startswith("unit_changed: the answer says GBP but its prices are in GBp")


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The symbols of every ``instruments`` read the book makes, in order."""
    reads: list[list[str]] = []

    def read(store: Store, symbols: Iterable[str] | None = None) -> dict[str, Instrument]:
        reads.append(sorted(symbols or ()))
        return read_instruments(store, symbols)

    monkeypatch.setattr(instruments, "read_instruments", read)
    return reads


def test_a_runs_batches_settle_from_what_describe_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """describe reads the run's tickers once and their batches read nothing more; a row
    another connection changes meanwhile is read again (PRAGMA data_version), so what
    it wrote is merged over, not overwritten from a stale copy."""
    reads = _counting_reads(monkeypatch)
    book = InstrumentBook()
    with Store(tmp_path / "s.sqlite3") as store:
        with store.transaction():
            book.describe(store, ["VOD.L", "BP.L", "SHEL.L"], NOW)
        with store.transaction():
            book.settle_batch(store, [("VOD.L", "yahoo", _bars([72.0], "GBp"))], NOW)
        assert reads == [["BP.L", "SHEL.L", "VOD.L"]]
        with sqlite3.connect(tmp_path / "s.sqlite3") as other:
            other.execute("UPDATE instruments SET name = 'BP plc' WHERE symbol = 'BP.L'")
        with store.transaction():
            book.settle_batch(store, [("BP.L", "yahoo", _bars([480.0], "GBp"))], NOW)
        assert reads[1:] == [["BP.L"]]
        assert read_instruments(store)["BP.L"].name == "BP plc"


def test_another_books_write_or_a_rollback_makes_the_book_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another flow's book (same store) writing a row, or a batch rolled back after the
    book wrote, leaves the book's copy stale: it reads again instead of trusting it."""
    reads = _counting_reads(monkeypatch)
    book = InstrumentBook()
    with Store(tmp_path / "s.sqlite3") as store:
        with store.transaction():
            book.describe(store, ["VOD.L", "BP.L"], NOW)
        declared = InstrumentBook({"VOD.L": InstrumentSettings(name="Vodafone")})
        with store.transaction():
            declared.describe(store, ["VOD.L"], NOW)
        with store.transaction():
            book.settle_batch(store, [("VOD.L", "yahoo", _bars([72.0], "GBp"))], NOW)
        assert reads[-1] == ["VOD.L"]
        assert read_instruments(store)["VOD.L"].name == "Vodafone"

        def describe_then_fail() -> None:
            with store.transaction():
                book.describe(store, ["RR.L"], NOW)
                raise RuntimeError("the batch failed after the book wrote")

        with pytest.raises(RuntimeError):
            describe_then_fail()
        with store.transaction():
            book.describe(store, ["RR.L"], NOW)  # not "unchanged": its row was rolled back
        assert "RR.L" in read_instruments(store)


def _delisting_settings(tmp_path: Path, url: str) -> Settings:
    fast = {"base_url": url, "rate": "10000/minute", "backoff": "1ms", "backoff_max": "10ms"}
    settings = one_flow(tmp_path / "d.sqlite3", "yahoo", fast, ["AAPL", "ZZZGONE"])
    return settings.model_copy(
        update={"delisted": settings.delisted.model_copy(update={"after_runs": 2})}
    )


async def test_a_ticker_not_found_run_after_run_is_marked_and_asked_weekly(
    tmp_path: Path, sim_server: MakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two not-found runs mark ZZZGONE delisted; runs skip it until its weekly re-check."""
    sim = await sim_server()
    assert sim.url is not None
    settings = _delisting_settings(tmp_path, sim.url)
    now = datetime.now(UTC)
    async with Runtime(settings) as runtime:
        for _ in range(2):
            summary = await runtime.run_flow("eod", "manual", now=now)
            assert summary.tickers_failed == 1
        asked = sim.stats.requests
        with capture_logs() as logs:
            skipped = await runtime.run_flow("eod", "manual", now=now + timedelta(days=1))
        assert (skipped.tickers_total, skipped.tickers_failed) == (1, 0)
        assert sim.stats.requests == asked + 1  # AAPL only
        assert any(e["event"] == "tickers.delisted_skipped" for e in logs)
        again = await runtime.run_flow("eod", "manual", now=now + timedelta(days=8))
        assert (again.tickers_total, again.tickers_failed) == (2, 1)
    with Store(tmp_path / "d.sqlite3") as store:
        row: Any = store._conn.execute(  # type: ignore[union-attr]
            "SELECT not_found_runs, delisted, next_check FROM instruments WHERE symbol = 'ZZZGONE'"
        ).fetchone()
    assert row[:2] == (3, 1)
    assert datetime.fromisoformat(row[2]) > now + timedelta(days=6)
    capsys.readouterr()  # the runs' log lines
    assert print_status(settings, as_json=True) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(s["symbol"], s["delisted"]) for s in data["not_found"]] == [("ZZZGONE", True)]
    print_status(settings, as_json=False)
    assert "ticker ZZZGONE delisted? not found in 3 runs in a row" in capsys.readouterr().out


async def test_every_flow_ticker_has_a_row_with_what_the_config_declares(
    tmp_path: Path, sim_server: MakeServer
) -> None:
    """A quotes flow writes no bars, yet its tickers get rows: the config's, the ticker's."""
    sim = await sim_server()
    assert sim.url is not None
    settings = Settings.model_validate(
        {
            "store": {"path": str(tmp_path / "q.sqlite3")},
            "providers": {"yahoo": {"base_url": sim.url, "rate": "10000/minute"}},
            "flows": [
                {"name": "q", "kind": "quotes", "provider": "yahoo", "every": "1h"}
                | {"tickers": ["VOD.L", "BTC-USD"]}
            ],
            "instruments": {"VOD.L": {"name": "Vodafone", "currency": "GBp", "exchange": "XLON"}},
        }
    )
    async with Runtime(settings) as runtime:
        await runtime.run_flow("q", "manual", now=datetime(2024, 7, 1, 15, tzinfo=UTC))
    with Store(tmp_path / "q.sqlite3") as store:
        rows = read_instruments(store)
    assert rows == {
        "VOD.L": Instrument("VOD.L", name="Vodafone", exchange="XLON", currency="GBP"),
        "BTC-USD": Instrument("BTC-USD", type="crypto", currency="USD", quoted_unit="USD"),
    }
