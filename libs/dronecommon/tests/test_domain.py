"""Shared wire types: enums, date-times, locations and distances."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from dronecommon.domain import (
    ApiModel,
    ConfirmationType,
    Location,
    PackageSize,
    UtcDateTime,
    distance_miles,
    month_bounds,
    travel_time,
)


class Sample(ApiModel):
    package_size: PackageSize
    confirmation_type: ConfirmationType
    at: UtcDateTime


def test_enums_match_case_insensitively_and_serialise_canonically() -> None:
    sample = Sample.model_validate(
        {"packageSize": "small", "confirmationType": "FINGERPRINT", "at": "2019-05-08T20:00:00Z"}
    )
    assert sample.package_size is PackageSize.SMALL
    assert sample.wire() == {
        "packageSize": "Small",
        "confirmationType": "FingerPrint",
        "at": "2019-05-08T20:00:00.000Z",
    }
    with pytest.raises(ValidationError):
        Sample.model_validate({"packageSize": "Huge", "confirmationType": "None", "at": "now"})


def test_date_times_come_out_in_utc() -> None:
    sample = Sample.model_validate(
        {"packageSize": "Large", "confirmationType": "None", "at": "2019-05-08T22:00:00+02:00"}
    )
    assert sample.at == dt.datetime(2019, 5, 8, 20, tzinfo=dt.UTC)
    naive = Sample.model_validate(
        {"packageSize": "Large", "confirmationType": "None", "at": "2019-05-08T20:00:00"}
    )
    assert naive.wire()["at"] == "2019-05-08T20:00:00.000Z"


def test_date_times_out_of_range_in_utc_are_validation_errors() -> None:
    for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"):
        with pytest.raises(ValidationError, match="out of range"):
            Sample.model_validate({"packageSize": "Small", "confirmationType": "None", "at": value})


def test_distance_and_travel_time() -> None:
    seattle = Location(latitude=47.6062, longitude=-122.3321)
    tacoma = Location(latitude=47.2529, longitude=-122.4443)
    assert distance_miles(seattle, tacoma) == pytest.approx(24.9, abs=0.3)
    assert distance_miles(seattle, seattle) == 0
    assert travel_time(seattle, tacoma, 50).total_seconds() == pytest.approx(
        distance_miles(seattle, tacoma) / 50 * 3600
    )


def test_month_bounds() -> None:
    assert month_bounds(2019, 12) == (
        dt.datetime(2019, 12, 1, tzinfo=dt.UTC),
        dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    )
    assert month_bounds(2024, 2)[1] == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert month_bounds(9999, 12)[1].year == 9999
