"""make_bar builds the very Bar that Bar(...) builds: equal, hashed alike, frozen."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest

from finappd.records import Bar, InstrumentInfo, make_bar


@pytest.mark.parametrize(
    "fields",
    [
        ("AAPL", date(2024, 3, 4), 1.0, 2.0, 0.5, 1.5, 1.4, 1e6, "1d", False, "USD", None),
        (
            "VOD.L",
            datetime(2024, 3, 4, 8, 0, tzinfo=UTC),
            None,
            None,
            None,
            71.5,
            None,
            None,
            "1h",
            True,
            "GBp",
            InstrumentInfo(currency="GBp", exchange="LSE"),
        ),
    ],
)
def test_make_bar_is_the_bar_the_constructor_makes(fields: tuple[object, ...]) -> None:
    made = make_bar(*fields)  # type: ignore[arg-type]
    built = Bar(*fields)  # type: ignore[arg-type]
    assert type(made) is Bar
    assert made == built
    assert hash(made) == hash(built)
    assert repr(made) == repr(built)
    assert dataclasses.astuple(made) == dataclasses.astuple(built)
    assert (made.currency, made.info) == (built.currency, built.info)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.close = 2.0  # type: ignore[misc]
