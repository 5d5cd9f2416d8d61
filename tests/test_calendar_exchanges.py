"""Tests for finappd.calendar.exchanges: which exchange a ticker trades on, never New York
by default; config aliases, provider names, suffixes, and the table against the library."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest

from finappd.calendar import (
    ALIASES,
    EXCHANGES,
    SUFFIXES,
    UNKNOWN,
    exchange,
    exchange_for,
    provider_exchange,
)


@pytest.mark.parametrize(
    ("symbol", "code"),
    [
        ("AAPL", "XNYS"),
        ("BRK-B", "XNYS"),  # Yahoo's share class
        ("BRK.B", "XNYS"),  # other providers' share class
        ("^GSPC", "XNYS"),
        ("^DJI", "XNYS"),
        ("^FTSE", "XLON"),
        ("^N225", "XTKS"),
        ("^HSI", "XHKG"),
        ("VOD.L", "XLON"),
        ("MC.PA", "XPAR"),
        ("ASML.AS", "XAMS"),
        ("ABI.BR", "XBRU"),
        ("EDP.LS", "XLIS"),
        ("ENI.MI", "XMIL"),
        ("NESN.SW", "XSWX"),
        ("SAN.MC", "XMAD"),
        ("VOLV-B.ST", "XSTO"),
        ("NOKIA.HE", "XHEL"),
        ("NOVO-B.CO", "XCSE"),
        ("EQNR.OL", "XOSL"),
        ("SAP.DE", "XETR"),
        ("0700.HK", "XHKG"),
        ("600519.SS", "XSHG"),
        ("000858.SZ", "XSHE"),
        ("RELIANCE.NS", "XNSE"),
        ("RELIANCE.BO", "XBOM"),
        ("005930.KS", "XKRX"),
        ("2330.TW", "XTAI"),
        ("7203.T", "XTKS"),
        ("BHP.AX", "XASX"),
        ("RY.TO", "XTSE"),
        ("PETR4.SA", "BVMF"),
        ("WALMEX.MX", "XMEX"),
        ("NPN.JO", "XJSE"),
        ("TEVA.TA", "XTAE"),
        ("D05.SI", "XSES"),
        ("BTC-USD", "CRYPTO"),
        ("ETH-EUR", "CRYPTO"),
        ("EURUSD=X", "FX"),
        ("CL=F", "CMES"),
        ("FOO.XY", "UNKNOWN"),  # a suffix nobody uses
        ("^NOSUCH", "UNKNOWN"),  # an index nobody lists
    ],
)
def test_exchange_for_reads_the_ticker(symbol: str, code: str) -> None:
    """A ticker's Yahoo form names its exchange; no suffix at all means the US."""
    assert exchange_for(symbol).code == code


def test_no_ticker_with_a_non_us_suffix_gets_new_york() -> None:
    """Every suffix but the US share classes names a non-US exchange, and an unknown one none."""
    share_classes = {"A", "B", "C"}
    for suffix in sorted(set(SUFFIXES) - share_classes):
        where = exchange_for(f"ABC.{suffix}")
        assert where.calendar != "XNYS", suffix
        assert where.tz_name != "America/New_York", suffix
    for symbol in ("ABC.XY", "ABC.ZZZ", "^UNKNOWN", "7203.TYO"):
        assert exchange_for(symbol) is UNKNOWN


def test_the_config_and_the_provider_come_before_the_suffix() -> None:
    """Declared (config) first, then the provider's metadata, then the suffix."""
    paris = EXCHANGES["XPAR"]
    assert exchange_for("VOD.L", declared="XNYS").code == "XNYS"
    assert exchange_for("VOD.L", provider=paris) is paris
    assert exchange_for("VOD.L", declared="lse", provider=paris).code == "XLON"
    assert exchange_for("FOO.XY", provider=paris) is paris


@pytest.mark.parametrize(
    ("alias", "code"),
    [("NYSE", "XNYS"), ("nasdaq", "XNAS"), ("LSE", "XLON"), ("xtks", "XTKS"), ("XBSP", "BVMF")],
)
def test_config_aliases(alias: str, code: str) -> None:
    """Old short names and MICs in any case name the same exchange."""
    assert exchange(alias).code == code


def test_an_unknown_config_exchange_is_refused_with_the_choices() -> None:
    """A name nothing knows is an error naming MICs and aliases, never New York."""
    with pytest.raises(ValueError, match=r"unknown exchange 'XXXX'.*XNYS.*NYSE"):
        exchange("XXXX")


@pytest.mark.parametrize(
    ("name", "tz", "code"),
    [
        ("NMS", "America/New_York", "XNAS"),
        ("NYQ", "America/New_York", "XNYS"),
        ("LSE", "Europe/London", "XLON"),
        ("PAR", "Europe/Paris", "XPAR"),
        ("JPX", "Asia/Tokyo", "XTKS"),
        ("TYO", "Asia/Tokyo", "XTKS"),
        ("HKG", "Asia/Hong_Kong", "XHKG"),
        ("NSI", "Asia/Kolkata", "XNSE"),
        ("SAO", "America/Sao_Paulo", "BVMF"),
        ("JNB", "Africa/Johannesburg", "XJSE"),
        ("CCC", "UTC", "CRYPTO"),
        ("CCY", "Europe/London", "FX"),
        ("XNAS", None, "XNAS"),  # Twelve Data's mic_code
        ("Euronext", "Europe/Amsterdam", "XAMS"),  # Twelve Data's exchange name
        ("Euronext", "Europe/Lisbon", "XLIS"),
    ],
)
def test_provider_names_map_to_mics(name: str, tz: str | None, code: str) -> None:
    """Yahoo's exchangeName codes and Twelve Data's names and MICs map to the MIC."""
    found = provider_exchange(name, tz)
    assert found is not None
    assert found.code == code


def test_a_provider_name_nothing_knows_keeps_its_timezone_without_a_calendar() -> None:
    """An unmapped name with a timezone is that exchange on the weekday rule; no name, none."""
    found = provider_exchange("HSX", "Asia/Ho_Chi_Minh")
    assert found is not None
    assert (found.code, found.tz_name, found.calendar) == ("HSX", "Asia/Ho_Chi_Minh", None)
    assert provider_exchange(None, None) is None
    assert provider_exchange("ZZZ", None) is None
    assert provider_exchange("ZZZ", "Not/AZone") is None


def test_aliases_and_suffixes_name_known_mics() -> None:
    """Every alias and suffix points into the exchange table."""
    assert set(ALIASES.values()) <= set(EXCHANGES)
    assert set(SUFFIXES.values()) <= set(EXCHANGES)


def test_the_table_agrees_with_exchange_calendars() -> None:
    """Each exchange's timezone keeps its calendar's UTC offset (summer and winter).

    The calendars' constants are read off unbuilt instances: nothing is computed.
    """
    instants = [datetime(2025, 1, 15, 12, tzinfo=UTC), datetime(2025, 7, 15, 12, tzinfo=UTC)]
    for code, where in EXCHANGES.items():
        if where.calendar is None or where.calendar.startswith("24/"):
            continue
        name = where.calendar
        module = importlib.import_module(f"exchange_calendars.exchange_calendar_{name.lower()}")
        cls = getattr(module, f"{name}ExchangeCalendar")
        theirs = cls.__new__(cls).tz
        for instant in instants:
            assert (
                instant.astimezone(where.tz).utcoffset() == instant.astimezone(theirs).utcoffset()
            ), code
