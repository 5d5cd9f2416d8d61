"""Which exchange a ticker trades on: ISO 10383 MICs, config aliases, provider names, suffixes.

One table, :data:`EXCHANGES`, names every exchange finappd knows by its MIC, with its
timezone and the exchange_calendars calendar its sessions come from (several MICs share
one: Nasdaq trades NYSE's sessions, Shenzhen Shanghai's, NSE BSE's). A ticker's exchange is
resolved in this order (:func:`exchange_for`):

1. the config's ``exchange`` (a MIC or an alias such as ``NYSE`` or ``LSE``);
2. the provider's metadata: Yahoo's ``exchangeName`` and ``exchangeTimezoneName``, or a
   MIC such as Twelve Data's ``mic_code`` (:func:`provider_exchange`);
3. the ticker's form, Yahoo's convention: ``=X`` FX, ``=F`` CME futures, ``BTC-USD``
   crypto, ``^GSPC`` a known index, a suffix (``.PA`` Paris, ``.HK`` Hong Kong, ...), and
   no suffix at all (``AAPL``, ``BRK-B``, ``BRK.B``) the United States.

Nothing falls back to New York: a ticker none of these places (``FOO.XY``, an unknown
``^INDEX``) gets :data:`UNKNOWN`, and an exchange whose calendar no library has (Ho Chi
Minh, Berlin, Munich, the CSE) keeps its MIC and timezone with ``calendar = None``; both
trade on the explicit weekday rule of :mod:`finappd.calendar.tables`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = [
    "ALIASES",
    "EXCHANGES",
    "SUFFIXES",
    "UNKNOWN",
    "Exchange",
    "exchange",
    "exchange_for",
    "provider_exchange",
    "suffix_exchange",
]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One exchange: its code (a MIC), timezone, name, and where its sessions come from.

    ``calendar`` is an exchange_calendars name (``XNYS``), ``24/7`` (every day) or ``24/5``
    (weekdays) as whole days in ``tz_name``, or ``None``: no calendar knows this
    exchange, so it trades weekdays as whole days in ``tz_name`` (the explicit rule).
    """

    code: str
    tz_name: str
    name: str
    calendar: str | None

    @property
    def tz(self) -> ZoneInfo:
        """The exchange timezone."""
        return _zone(self.tz_name)

    @property
    def rule(self) -> str:
        """Where the sessions come from, in words (``check-config`` and ``status`` show it)."""
        if self.calendar == "24/7":
            return f"every day, whole days in {self.tz_name}"
        if self.calendar == "24/5":
            return f"weekdays, whole days in {self.tz_name}"
        if self.calendar is None:
            return f"no calendar known: weekdays, whole days in {self.tz_name}"
        return f"exchange_calendars {self.calendar}"


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


_NY, _TO, _BERLIN, _SEOUL = "America/New_York", "America/Toronto", "Europe/Berlin", "Asia/Seoul"

#: Every known exchange by MIC (plus ``CRYPTO`` and ``FX``): (timezone, name, calendar).
_TABLE: dict[str, tuple[str, str, str | None]] = {
    # United States: one calendar for every venue.
    "XNYS": (_NY, "New York Stock Exchange", "XNYS"),
    "XNAS": (_NY, "Nasdaq", "XNYS"),
    "XASE": (_NY, "NYSE American", "XNYS"),
    "ARCX": (_NY, "NYSE Arca", "XNYS"),
    "BATS": (_NY, "Cboe BZX", "XNYS"),
    "OOTC": (_NY, "OTC Markets", "XNYS"),
    "CMES": ("America/Chicago", "CME Globex", "CMES"),
    # Americas
    "XTSE": (_TO, "Toronto Stock Exchange", "XTSE"),
    "XTSX": (_TO, "TSX Venture Exchange", "XTSE"),
    "XCNQ": (_TO, "Canadian Securities Exchange", None),
    "BVMF": ("America/Sao_Paulo", "B3", "BVMF"),
    "XMEX": ("America/Mexico_City", "Bolsa Mexicana de Valores", "XMEX"),
    "XBUE": ("America/Argentina/Buenos_Aires", "Bolsas y Mercados Argentinos", "XBUE"),
    "XSGO": ("America/Santiago", "Bolsa de Santiago", "XSGO"),
    "XLIM": ("America/Lima", "Bolsa de Valores de Lima", "XLIM"),
    # Europe
    "XLON": ("Europe/London", "London Stock Exchange", "XLON"),
    "XPAR": ("Europe/Paris", "Euronext Paris", "XPAR"),
    "XAMS": ("Europe/Amsterdam", "Euronext Amsterdam", "XAMS"),
    "XBRU": ("Europe/Brussels", "Euronext Brussels", "XBRU"),
    "XLIS": ("Europe/Lisbon", "Euronext Lisbon", "XLIS"),
    "XMIL": ("Europe/Rome", "Euronext Milan (Borsa Italiana)", "XMIL"),
    "XDUB": ("Europe/Dublin", "Euronext Dublin", "XDUB"),
    "XOSL": ("Europe/Oslo", "Euronext Oslo Børs", "XOSL"),
    "XSWX": ("Europe/Zurich", "SIX Swiss Exchange", "XSWX"),
    "XMAD": ("Europe/Madrid", "Bolsa de Madrid (BME)", "XMAD"),
    "XSTO": ("Europe/Stockholm", "Nasdaq Stockholm", "XSTO"),
    "XHEL": ("Europe/Helsinki", "Nasdaq Helsinki", "XHEL"),
    "XCSE": ("Europe/Copenhagen", "Nasdaq Copenhagen", "XCSE"),
    "XICE": ("Atlantic/Reykjavik", "Nasdaq Iceland", "XICE"),
    "XTAL": ("Europe/Tallinn", "Nasdaq Tallinn", "XTAL"),
    "XRIS": ("Europe/Riga", "Nasdaq Riga", "XRIS"),
    "XLIT": ("Europe/Vilnius", "Nasdaq Vilnius", "XLIT"),
    "XETR": (_BERLIN, "Xetra", "XETR"),
    "XFRA": (_BERLIN, "Frankfurt Stock Exchange", "XFRA"),
    "XDUS": (_BERLIN, "Börse Düsseldorf", "XDUS"),
    "XHAM": (_BERLIN, "Börse Hamburg", "XHAM"),
    "XSTU": (_BERLIN, "Börse Stuttgart", "XSTU"),
    "XBER": (_BERLIN, "Börse Berlin", None),
    "XMUN": (_BERLIN, "Börse München", None),
    "XWBO": ("Europe/Vienna", "Wiener Börse", "XWBO"),
    "XWAR": ("Europe/Warsaw", "Warsaw Stock Exchange", "XWAR"),
    "XPRA": ("Europe/Prague", "Prague Stock Exchange", "XPRA"),
    "XBUD": ("Europe/Budapest", "Budapest Stock Exchange", "XBUD"),
    "ASEX": ("Europe/Athens", "Athens Exchange", "ASEX"),
    "XIST": ("Europe/Istanbul", "Borsa Istanbul", "XIST"),
    "XMOS": ("Europe/Moscow", "Moscow Exchange", "XMOS"),
    "XLUX": ("Europe/Luxembourg", "Luxembourg Stock Exchange", "XLUX"),
    # Asia, Middle East, Africa, Oceania
    "XHKG": ("Asia/Hong_Kong", "Hong Kong Exchanges", "XHKG"),
    "XSHG": ("Asia/Shanghai", "Shanghai Stock Exchange", "XSHG"),
    "XSHE": ("Asia/Shanghai", "Shenzhen Stock Exchange", "XSHG"),
    "XNSE": ("Asia/Kolkata", "National Stock Exchange of India", "XBOM"),
    "XBOM": ("Asia/Kolkata", "BSE", "XBOM"),
    "XKRX": (_SEOUL, "Korea Exchange (KOSPI)", "XKRX"),
    "XKOS": (_SEOUL, "Korea Exchange (KOSDAQ)", "XKRX"),
    "XTAI": ("Asia/Taipei", "Taiwan Stock Exchange", "XTAI"),
    "ROCO": ("Asia/Taipei", "Taipei Exchange", "XTAI"),
    "XTKS": ("Asia/Tokyo", "Tokyo Stock Exchange", "XTKS"),
    "XSES": ("Asia/Singapore", "Singapore Exchange", "XSES"),
    "XIDX": ("Asia/Jakarta", "Indonesia Stock Exchange", "XIDX"),
    "XKLS": ("Asia/Kuala_Lumpur", "Bursa Malaysia", "XKLS"),
    "XBKK": ("Asia/Bangkok", "Stock Exchange of Thailand", "XBKK"),
    "XPHS": ("Asia/Manila", "Philippine Stock Exchange", "XPHS"),
    "XKAR": ("Asia/Karachi", "Pakistan Stock Exchange", "XKAR"),
    "XSTC": ("Asia/Ho_Chi_Minh", "Ho Chi Minh City Stock Exchange", None),
    "XSAU": ("Asia/Riyadh", "Saudi Exchange (Tadawul)", "XSAU"),
    "XTAE": ("Asia/Jerusalem", "Tel Aviv Stock Exchange", "XTAE"),
    "XJSE": ("Africa/Johannesburg", "Johannesburg Stock Exchange", "XJSE"),
    "XASX": ("Australia/Sydney", "Australian Securities Exchange", "XASX"),
    "XNZE": ("Pacific/Auckland", "New Zealand Exchange", "XNZE"),
    # Not exchanges: whole UTC days, every day or weekdays.
    "CRYPTO": ("UTC", "crypto", "24/7"),
    "FX": ("UTC", "foreign exchange", "24/5"),
}

EXCHANGES: dict[str, Exchange] = {
    code: Exchange(code, tz, name, calendar) for code, (tz, name, calendar) in _TABLE.items()
}

#: A ticker nothing places: the weekday rule in UTC.
UNKNOWN = Exchange("UNKNOWN", "UTC", "unknown exchange", None)

#: Short names the config accepts for a MIC (the old ones included).
ALIASES: dict[str, str] = {
    "NYSE": "XNYS",
    "NASDAQ": "XNAS",
    "AMEX": "XASE",
    "ARCA": "ARCX",
    "CME": "CMES",
    "TSX": "XTSE",
    "TSXV": "XTSX",
    "B3": "BVMF",
    "BOVESPA": "BVMF",
    "XBSP": "BVMF",
    "BMV": "XMEX",
    "LSE": "XLON",
    "SIX": "XSWX",
    "BME": "XMAD",
    "XETRA": "XETR",
    "FWB": "XFRA",
    "HKEX": "XHKG",
    "SSE": "XSHG",
    "SZSE": "XSHE",
    "NSE": "XNSE",
    "BSE": "XBOM",
    "KRX": "XKRX",
    "KOSDAQ": "XKOS",
    "TWSE": "XTAI",
    "TPEX": "ROCO",
    "JPX": "XTKS",
    "SGX": "XSES",
    "TASE": "XTAE",
    "JSE": "XJSE",
    "ASX": "XASX",
    "NZX": "XNZE",
}

#: Yahoo's ``exchangeName`` codes (chart ``meta``) that are not a MIC or an alias.
_PROVIDER_NAMES: dict[str, str] = {
    **dict.fromkeys(("NMS", "NGM", "NCM", "NAS", "NIM"), "XNAS"),
    **dict.fromkeys(("NYQ", "NYS", "SNP", "DJI"), "XNYS"),
    "ASE": "XASE",
    "PCX": "ARCX",
    "BTS": "BATS",
    **dict.fromkeys(("PNK", "OQB", "OQX", "OEM"), "OOTC"),
    **dict.fromkeys(("CBT", "NYM", "CMX"), "CMES"),
    "TOR": "XTSE",
    "VAN": "XTSX",
    "CNQ": "XCNQ",
    "SAO": "BVMF",
    "MEX": "XMEX",
    "BUE": "XBUE",
    "SGO": "XSGO",
    "IOB": "XLON",
    "PAR": "XPAR",
    "AMS": "XAMS",
    "BRU": "XBRU",
    "LIS": "XLIS",
    "MIL": "XMIL",
    "ISE": "XDUB",
    "OSL": "XOSL",
    **dict.fromkeys(("EBS", "VTX"), "XSWX"),
    "MCE": "XMAD",
    "STO": "XSTO",
    "HEL": "XHEL",
    "CPH": "XCSE",
    "ICE": "XICE",
    "TAL": "XTAL",
    "RIS": "XRIS",
    "LIT": "XLIT",
    "GER": "XETR",
    "FRA": "XFRA",
    "DUS": "XDUS",
    "HAM": "XHAM",
    "STU": "XSTU",
    "BER": "XBER",
    "MUN": "XMUN",
    "VIE": "XWBO",
    "WSE": "XWAR",
    "PRA": "XPRA",
    "BUD": "XBUD",
    "ATH": "ASEX",
    "IST": "XIST",
    "MCX": "XMOS",
    "HKG": "XHKG",
    "SHH": "XSHG",
    "SHZ": "XSHE",
    "NSI": "XNSE",
    "KSC": "XKRX",
    "KOE": "XKOS",
    "TAI": "XTAI",
    "TWO": "ROCO",
    "TYO": "XTKS",
    "SES": "XSES",
    "JKT": "XIDX",
    "KLS": "XKLS",
    "SET": "XBKK",
    "PHS": "XPHS",
    "SAU": "XSAU",
    "TLV": "XTAE",
    "JNB": "XJSE",
    "NZE": "XNZE",
    "CCY": "FX",
    "CCC": "CRYPTO",
}

#: Euronext names one group of markets: the timezone says which (Twelve Data's ``Euronext``).
_EURONEXT = {
    EXCHANGES[m].tz_name: m for m in ("XPAR", "XAMS", "XBRU", "XLIS", "XDUB", "XOSL", "XMIL")
}

#: Yahoo ticker suffixes (after the last dot) → MIC. ``A``-``C`` are US share classes
#: as other providers write them (``BRK.B``).
SUFFIXES: dict[str, str] = {
    **dict.fromkeys(("A", "B", "C"), "XNYS"),
    "TO": "XTSE",
    "V": "XTSX",
    "CN": "XCNQ",
    "SA": "BVMF",
    "MX": "XMEX",
    "BA": "XBUE",
    "SN": "XSGO",
    "L": "XLON",
    "IL": "XLON",
    "PA": "XPAR",
    "AS": "XAMS",
    "BR": "XBRU",
    "LS": "XLIS",
    "MI": "XMIL",
    "IR": "XDUB",
    "OL": "XOSL",
    "SW": "XSWX",
    "MC": "XMAD",
    "ST": "XSTO",
    "HE": "XHEL",
    "CO": "XCSE",
    "IC": "XICE",
    "TL": "XTAL",
    "RG": "XRIS",
    "VS": "XLIT",
    "DE": "XETR",
    "F": "XFRA",
    "DU": "XDUS",
    "HM": "XHAM",
    "SG": "XSTU",
    "BE": "XBER",
    "MU": "XMUN",
    "VI": "XWBO",
    "WA": "XWAR",
    "PR": "XPRA",
    "BD": "XBUD",
    "AT": "ASEX",
    "IS": "XIST",
    "ME": "XMOS",
    "HK": "XHKG",
    "SS": "XSHG",
    "SZ": "XSHE",
    "NS": "XNSE",
    "BO": "XBOM",
    "KS": "XKRX",
    "KQ": "XKOS",
    "TW": "XTAI",
    "TWO": "ROCO",
    "T": "XTKS",
    "SI": "XSES",
    "JK": "XIDX",
    "KL": "XKLS",
    "BK": "XBKK",
    "PS": "XPHS",
    "VN": "XSTC",
    "SR": "XSAU",
    "TA": "XTAE",
    "JO": "XJSE",
    "AX": "XASX",
    "NZ": "XNZE",
}

#: Yahoo's caret indices whose exchange is known (the rest are :data:`UNKNOWN`).
_INDICES: dict[str, str] = {
    **dict.fromkeys(
        ("^GSPC", "^DJI", "^IXIC", "^NDX", "^RUT", "^VIX", "^NYA", "^XAX", "^W5000", "^SOX"),
        "XNYS",
    ),
    **dict.fromkeys(("^TNX", "^IRX", "^FVX", "^TYX", "^DJT", "^DJU", "^SP400", "^SP600"), "XNYS"),
    "^GSPTSE": "XTSE",
    "^BVSP": "BVMF",
    "^MXX": "XMEX",
    "^MERV": "XBUE",
    "^IPSA": "XSGO",
    **dict.fromkeys(("^FTSE", "^FTMC", "^FTAS"), "XLON"),
    **dict.fromkeys(("^GDAXI", "^MDAXI", "^SDAXI", "^TECDAX"), "XETR"),
    "^FCHI": "XPAR",
    "^AEX": "XAMS",
    "^BFX": "XBRU",
    "^PSI20": "XLIS",
    "^ISEQ": "XDUB",
    "^IBEX": "XMAD",
    "^SSMI": "XSWX",
    "^OMX": "XSTO",
    "^OMXH25": "XHEL",
    "^OMXC25": "XCSE",
    "^OSEAX": "XOSL",
    "^ATX": "XWBO",
    "^XU100": "XIST",
    "^N225": "XTKS",
    **dict.fromkeys(("^HSI", "^HSCE"), "XHKG"),
    "^SSEC": "XSHG",
    **dict.fromkeys(("^NSEI", "^NSEBANK"), "XNSE"),
    "^BSESN": "XBOM",
    "^KS11": "XKRX",
    "^KQ11": "XKOS",
    "^TWII": "XTAI",
    "^STI": "XSES",
    "^JKSE": "XIDX",
    "^KLSE": "XKLS",
    **dict.fromkeys(("^AXJO", "^AORD"), "XASX"),
    "^NZ50": "XNZE",
}

#: Quote currencies of Yahoo crypto pairs (``BTC-USD``, ``ETH-EUR``); ``BRK-B`` is a share.
_CRYPTO_QUOTES = frozenset(
    {"USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "KRW", "INR", "USDT", "USDC", "BTC", "ETH"}
)


def exchange(code: str) -> Exchange:
    """The exchange a config names by MIC or alias (any case); ``ValueError`` if none."""
    upper = code.strip().upper()
    found = EXCHANGES.get(ALIASES.get(upper, upper))
    if found is None:
        raise ValueError(
            f"unknown exchange {code!r}: use an ISO 10383 MIC ({', '.join(sorted(EXCHANGES))}) "
            f"or an alias ({', '.join(sorted(ALIASES))})"
        )
    return found


def provider_exchange(name: str | None, tz_name: str | None = None) -> Exchange | None:
    """The exchange a provider's metadata names: a MIC, an alias or Yahoo's ``exchangeName``.

    A name nothing knows, with its timezone, is that exchange without a calendar (the
    weekday rule in ``tz_name``); ``None`` when neither says anything.
    """
    upper = (name or "").strip().upper()
    code = ALIASES.get(upper) or _PROVIDER_NAMES.get(upper) or upper
    if code == "EURONEXT" and tz_name in _EURONEXT:
        code = _EURONEXT[tz_name]
    if code in EXCHANGES:
        return EXCHANGES[code]
    if not tz_name:
        return None
    try:
        _zone(tz_name)
    except (ValueError, KeyError):  # not an IANA zone: the metadata does not place it
        return None
    return Exchange(upper or "UNKNOWN", tz_name, name or "unknown exchange", None)


@lru_cache(maxsize=65536)
def suffix_exchange(symbol: str) -> Exchange | None:
    """The exchange a ticker's own form names (Yahoo's convention), or ``None``."""
    upper = symbol.strip().upper()
    if upper.endswith("=X"):
        return EXCHANGES["FX"]
    if upper.endswith("=F"):
        return EXCHANGES["CMES"]
    base, dash, quote = upper.rpartition("-")
    if dash and base and quote in _CRYPTO_QUOTES:
        return EXCHANGES["CRYPTO"]
    if upper in _INDICES:
        return EXCHANGES[_INDICES[upper]]
    stem, dot, suffix = upper.rpartition(".")
    if dot and stem:
        code = SUFFIXES.get(suffix)
        return None if code is None else EXCHANGES[code]
    if upper.startswith("^"):
        return None
    return EXCHANGES["XNYS"]  # no suffix: a US listing


def exchange_for(
    symbol: str, declared: str | None = None, provider: Exchange | None = None
) -> Exchange:
    """The exchange of ``symbol``: ``declared`` (config), else ``provider`` (its metadata,
    :func:`provider_exchange`), else its form; :data:`UNKNOWN` when nothing places it."""
    if declared is not None:
        return exchange(declared)
    if provider is not None:
        return provider
    return suffix_exchange(symbol) or UNKNOWN
