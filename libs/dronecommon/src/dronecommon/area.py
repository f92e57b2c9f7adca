"""The service area: where drones fly, and where free-text places are put.

One definition, read by every service that needs it (ingestion refuses places outside the area,
the workflow resolves places, the drone scheduler flies from the bases and refuses trips beyond
the maximum), configured the same way in each: ``<PREFIX>SERVICE_AREA__BASES`` (a JSON list of
``{name, latitude, longitude, altitude?}``), ``<PREFIX>SERVICE_AREA__RADIUS_MILES``,
``<PREFIX>SERVICE_AREA__MAX_TRIP_MILES`` and ``<PREFIX>SERVICE_AREA__PLACES`` (the box free text is
placed in). The defaults are six drone bases around Seattle, ten miles around each, trips of at
most fifty miles.

- **In the area**: within ``radius_miles`` (great circle) of at least one base.
- **A trip**: a drone's flight from its base to the pickup, on to the drop-off and back to its
  base; no trip may be longer than ``max_trip_miles`` (the default stays inside the drones' range).
- **Places**: ``"47.6,-122.3"`` is that point; any other text is placed deterministically: it is
  normalised (Unicode NFKC, case-folded, runs of white space made one space, trimmed) and hashed
  with SHA-256; the first two 64-bit words of the digest place a point in the ``places`` box
  (latitude, then longitude). A point outside the area is drawn again from the hash of the text
  with ``#1``, ``#2``… appended, so the same text always gives the same point, inside the area
  (after 64 misses, the base nearest the first draw). The box's centre must lie in the area; the
  default box lies wholly inside the default area, so there the first draw always lands.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Self

from pydantic import BaseModel, Field, field_validator, model_validator

from dronecommon.domain import Location, Point, distance_miles

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
MAX_DRAWS = 64


class Base(BaseModel):
    """A drone base: where its drones wait and return to."""

    name: str = Field(pattern=NAME_PATTERN)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    altitude: float = Field(default=0.0, allow_inf_nan=False)

    @property
    def location(self) -> Location:
        return Location(latitude=self.latitude, longitude=self.longitude, altitude=self.altitude)


class Box(BaseModel):
    """A latitude/longitude rectangle."""

    south: float = Field(ge=-90, le=90)
    north: float = Field(ge=-90, le=90)
    west: float = Field(ge=-180, le=180)
    east: float = Field(ge=-180, le=180)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not (self.south < self.north and self.west < self.east):
            raise ValueError("a box needs south < north and west < east")
        return self

    @property
    def centre(self) -> Location:
        return Location(
            latitude=(self.south + self.north) / 2, longitude=(self.west + self.east) / 2
        )


DEFAULT_BASES = [
    Base(name="northgate", latitude=47.7063, longitude=-122.3250),
    Base(name="ballard", latitude=47.6687, longitude=-122.3845),
    Base(name="university", latitude=47.6615, longitude=-122.3131),
    Base(name="downtown", latitude=47.6062, longitude=-122.3321),
    Base(name="west-seattle", latitude=47.5613, longitude=-122.3864),
    Base(name="rainier", latitude=47.5480, longitude=-122.2740),
]
# Central Seattle: where free text is placed (wholly inside the default area).
DEFAULT_PLACES = Box(south=47.50, north=47.75, west=-122.45, east=-122.20)

_LAT_LON = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*,\s*([-+]?\d+(?:\.\d+)?)\s*$")


def normalise_place(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class ServiceArea(BaseModel):
    """The bases, how far around them drones deliver, the longest trip, and the places box."""

    bases: list[Base] = Field(default_factory=lambda: list(DEFAULT_BASES), min_length=1)
    radius_miles: float = Field(default=10.0, gt=0, le=1000)
    max_trip_miles: float = Field(default=50.0, gt=0, le=10_000)
    places: Box = Field(default_factory=lambda: DEFAULT_PLACES.model_copy())

    @field_validator("bases")
    @classmethod
    def _unique_names(cls, bases: list[Base]) -> list[Base]:
        names = [base.name for base in bases]
        if len(set(names)) != len(names):
            raise ValueError(f"base names must be unique: {names}")
        return bases

    @model_validator(mode="after")
    def _places_inside(self) -> Self:
        if not self.contains(self.places.centre):
            raise ValueError(
                "the places box must lie inside the area (its centre within radius_miles of a "
                "base): set service_area.places for these bases"
            )
        return self

    def nearest_base(self, location: Point) -> tuple[Base, float]:
        """The base nearest to ``location`` and its distance in miles."""
        return min(
            ((base, distance_miles(base, location)) for base in self.bases),
            key=lambda found: (found[1], found[0].name),
        )

    def contains(self, location: Location) -> bool:
        """Within ``radius_miles`` of a base."""
        return self.nearest_base(location)[1] <= self.radius_miles

    def trip_miles(self, base: Point, pickup: Point, dropoff: Point) -> float:
        """Base → pickup → drop-off → base, in miles."""
        return (
            distance_miles(base, pickup)
            + distance_miles(pickup, dropoff)
            + distance_miles(dropoff, base)
        )

    def shortest_trip(self, pickup: Location, dropoff: Location) -> float:
        """The shortest trip any base could fly for this pickup and drop-off (the leg between
        them measured once: the same sums as :meth:`trip_miles`, in the same order)."""
        direct = distance_miles(pickup, dropoff)
        return min(
            distance_miles(base, pickup) + direct + distance_miles(dropoff, base)
            for base in self.bases
        )

    def resolve(self, text: str) -> Location:
        """A ``"lat,lon"`` string as that point; any other text as its point in the area.

        Raises ``ValueError`` for empty text or coordinates out of range. Coordinates are not
        checked against the area here (:meth:`contains` says whether they are in it).
        """
        return self.place(text)[0]

    def place(self, text: str) -> tuple[Location, Base, float]:
        """:meth:`resolve` with the base nearest to the point and its distance in miles (the
        point is in the area when that is at most ``radius_miles``), each measured once."""
        point = _coordinates(text)
        if point is not None:
            return (point, *self.nearest_base(point))
        normalised = _normalised(text)
        for draw in range(MAX_DRAWS):
            point = self._draw(normalised if draw == 0 else f"{normalised}#{draw}")
            base, miles = self.nearest_base(point)
            if miles <= self.radius_miles:
                return point, base, miles
        # Unreachable with a box inside the area (checked when the settings load).
        base = self.nearest_base(self._draw(normalised))[0]
        return base.location, base, 0.0

    def _draw(self, text: str) -> Location:
        box = self.places
        digest = hashlib.sha256(text.encode()).digest()
        x = int.from_bytes(digest[0:8], "big") / 2**64
        y = int.from_bytes(digest[8:16], "big") / 2**64
        return Location(
            latitude=round(box.south + x * (box.north - box.south), 6),
            longitude=round(box.west + y * (box.east - box.west), 6),
            altitude=0.0,
        )


DEFAULT_SERVICE_AREA = ServiceArea()


def resolve_location(text: str, area: ServiceArea = DEFAULT_SERVICE_AREA) -> Location:
    """``area.resolve(text)``: the point a place names (see the module docstring)."""
    return area.resolve(text)


def check_place(text: str) -> None:
    """Raise ``ValueError`` for text no area can place (empty, or coordinates out of range):
    what validating a request needs, without drawing the point (the service that uses the place
    resolves it once, in its own area)."""
    if _coordinates(text) is None:
        _normalised(text)


def place_name(text: str) -> str | None:
    """The text as the name of a place, trimmed; None when it gives coordinates (``"lat,lon"``
    names no place: the point is all there is to show)."""
    if _LAT_LON.match(text):
        return None
    return text.strip() or None


def place_label(name: str | None, at: Location) -> str:
    """A place as a message names it: the customer's name for it, else its coordinates (five
    decimals, about a metre)."""
    return name or f"{at.latitude:.5f}, {at.longitude:.5f}"


def _coordinates(text: str) -> Location | None:
    """``"lat,lon"`` as that point (``ValueError`` when out of range); None for other text."""
    match = _LAT_LON.match(text)
    if match is None:
        return None
    latitude, longitude = float(match.group(1)), float(match.group(2))
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValueError(f"coordinates out of range: {text!r}")
    return Location(latitude=latitude, longitude=longitude, altitude=0.0)


def _normalised(text: str) -> str:
    normalised = normalise_place(text)
    if not normalised:
        raise ValueError("a place must not be empty")
    return normalised
