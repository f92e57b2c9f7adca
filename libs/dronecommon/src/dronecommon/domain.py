"""Types and rules shared by the services' wire models (the contract's "Shared types").

- JSON is camelCase (:class:`ApiModel`); enum values travel as their canonical strings and match
  case-insensitively on input.
- Date-times are timezone-aware; naive input is taken as UTC; output is RFC 3339 in UTC.
- Pickup and drop-off arrive at ingestion as text, resolved to points by the service area
  (:mod:`dronecommon.area`).
"""

from __future__ import annotations

import datetime as dt
import math
from enum import StrEnum
from typing import Annotated, Any, Protocol, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
)
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Base for wire models: camelCase on the wire, snake_case in Python, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=True,
        use_enum_values=False,
        ser_json_timedelta="float",
    )

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict as sent on the wire (aliases, RFC 3339 date-times)."""
        return self.model_dump(mode="json", by_alias=True)


class CaseInsensitiveEnum(StrEnum):
    """A string enum whose input matches its values regardless of case."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if isinstance(value, str):
            folded = value.strip().casefold()
            for member in cls:
                if member.value.casefold() == folded:
                    return member
        return None


class PackageSize(CaseInsensitiveEnum):
    SMALL = "Small"
    MEDIUM = "Medium"
    LARGE = "Large"


class ConfirmationType(CaseInsensitiveEnum):
    FINGERPRINT = "FingerPrint"
    PICTURE = "Picture"
    VOICE = "Voice"
    NONE = "None"


class DeliveryStage(CaseInsensitiveEnum):
    CREATED = "Created"
    RESCHEDULED = "Rescheduled"
    HEADED_TO_PICKUP = "HeadedToPickup"
    HEADED_TO_DROPOFF = "HeadedToDropoff"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"


# The heaviest package any service accepts (the contract leaves the unit to clients: the sample's
# ``"weight": 10`` fits easily), and the longest tag.
MAX_PACKAGE_WEIGHT = 100.0
MAX_TAG_LENGTH = 64

TERMINAL_STAGES = frozenset({DeliveryStage.COMPLETED, DeliveryStage.CANCELLED})

# The account a service acts for, on calls to services that keep data per account (the
# package service): set by the caller from the request's owner, never by a customer.
ACCOUNT_HEADER = "Dronedelivery-Account-Id"


def _as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("date-time is out of range once converted to UTC") from None


def format_utc(value: dt.datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a ``Z``."""
    return _as_utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


UtcDateTime = Annotated[
    dt.datetime,
    AfterValidator(_as_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Location(ApiModel):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    altitude: float = Field(default=0.0, allow_inf_nan=False)


EARTH_RADIUS_MILES = 3958.7613


class Point(Protocol):
    """Anything with a latitude and a longitude (a :class:`Location`, a drone base)."""

    @property
    def latitude(self) -> float: ...

    @property
    def longitude(self) -> float: ...


def distance_miles(a: Point, b: Point) -> float:
    """Great-circle (haversine) distance between two points, in statute miles."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(h)))


def travel_time(a: Location, b: Location, speed_mph: float) -> dt.timedelta:
    """How long a straight flight from ``a`` to ``b`` takes at ``speed_mph``."""
    return dt.timedelta(hours=distance_miles(a, b) / speed_mph)


def month_bounds(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants at which a calendar month starts and the next one starts."""
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    if (year, month) == (dt.MAXYEAR, 12):
        return start, dt.datetime.max.replace(tzinfo=dt.UTC)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end
