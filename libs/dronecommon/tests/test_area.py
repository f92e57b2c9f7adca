"""The service area: bases and radius, the longest trip, and where places resolve."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from dronecommon.area import (
    DEFAULT_PLACES,
    DEFAULT_SERVICE_AREA,
    Base,
    Box,
    ServiceArea,
    check_place,
    place_name,
)
from dronecommon.domain import Location, distance_miles
from dronecommon.settings import ServiceSettings

AREA = DEFAULT_SERVICE_AREA


def test_free_text_places_resolve_deterministically_inside_the_area() -> None:
    first = AREA.resolve("my pickup")
    assert first == AREA.resolve("  My   PICKUP ")
    assert first != AREA.resolve("drop off")
    assert AREA.contains(first)
    # Pinned: the rule is documented, so the point for the sample's text must never drift.
    assert (first.latitude, first.longitude) == (47.52568, -122.343237)


def test_every_free_text_place_lands_inside_the_area() -> None:
    for n in range(2000):
        point = AREA.resolve(f"place number {n}")
        assert AREA.contains(point), point
        assert DEFAULT_PLACES.south <= point.latitude <= DEFAULT_PLACES.north


def test_the_default_places_box_lies_wholly_inside_the_default_area() -> None:
    # A grid over the box: so the first draw always lands and old points never move.
    steps = [i / 40 for i in range(41)]
    box = DEFAULT_PLACES
    for x, y in itertools.product(steps, steps):
        point = Location(
            latitude=box.south + x * (box.north - box.south),
            longitude=box.west + y * (box.east - box.west),
        )
        assert AREA.contains(point), point


def test_coordinates_are_parsed_and_checked() -> None:
    assert AREA.resolve("47.6062, -122.3321") == Location(
        latitude=47.6062, longitude=-122.3321, altitude=0
    )
    with pytest.raises(ValueError, match="out of range"):
        AREA.resolve("91,0")
    with pytest.raises(ValueError, match="empty"):
        AREA.resolve("   ")


def test_a_place_is_named_by_its_text_unless_the_text_is_coordinates() -> None:
    assert place_name("  Pike Place Market ") == "Pike Place Market"
    assert place_name("47.6062, -122.3321") is None
    assert place_name("47.6062,-122.3321 ") is None
    assert place_name("47.6062 N, 122.3321 W") == "47.6062 N, 122.3321 W"  # free text
    assert place_name("   ") is None


def test_in_the_area_means_within_the_radius_of_a_base() -> None:
    downtown = Location(latitude=47.6062, longitude=-122.3321)
    assert AREA.contains(downtown)
    assert not AREA.contains(Location(latitude=-47.6, longitude=57.7))
    tacoma = Location(latitude=47.2529, longitude=-122.4443)  # ~20 miles south of the bases
    base, miles = AREA.nearest_base(tacoma)
    assert base.name == "west-seattle"
    assert miles > AREA.radius_miles
    assert not AREA.contains(tacoma)
    wider = ServiceArea(radius_miles=25)
    assert wider.contains(tacoma)


def test_trips_are_measured_base_to_base() -> None:
    pickup = Location(latitude=47.6101, longitude=-122.3421)
    dropoff = Location(latitude=47.6205, longitude=-122.3493)
    base = AREA.bases[3].location  # downtown
    assert AREA.trip_miles(base, pickup, dropoff) == pytest.approx(
        distance_miles(base, pickup)
        + distance_miles(pickup, dropoff)
        + distance_miles(dropoff, base)
    )
    assert AREA.shortest_trip(pickup, dropoff) == pytest.approx(
        AREA.trip_miles(base, pickup, dropoff)
    )


def test_a_place_comes_with_its_nearest_base_measured_once() -> None:
    tacoma = "47.2529,-122.4443"
    for text in ("my pickup", "place number 7", "47.6062, -122.3321", tacoma):
        point, base, miles = AREA.place(text)
        assert point == AREA.resolve(text)
        assert (base, miles) == AREA.nearest_base(point)
    # Coordinates are not moved into the area: the caller reads the distance.
    assert AREA.place(tacoma)[2] > AREA.radius_miles
    with pytest.raises(ValueError, match="out of range"):
        AREA.place("0,181")


def test_the_shortest_trip_is_the_shortest_of_every_bases_trip_to_the_bit() -> None:
    # The leg between pickup and drop-off is measured once; the sums stay those of trip_miles.
    for n in range(200):
        pickup, dropoff = AREA.resolve(f"from {n}"), AREA.resolve(f"to {n}")
        trips = [AREA.trip_miles(base, pickup, dropoff) for base in AREA.bases]
        assert AREA.shortest_trip(pickup, dropoff) == min(trips)


def test_checking_a_place_refuses_what_resolving_refuses_without_drawing_it() -> None:
    for text in ("my pickup", "47.6062, -122.3321", "-90,180", "Ünïcode  street"):
        check_place(text)
        AREA.resolve(text)
    for text, why in (("   ", "empty"), ("91,0", "out of range"), ("10,-180.5", "out of range")):
        with pytest.raises(ValueError, match=why):
            check_place(text)
        with pytest.raises(ValueError, match=why):
            AREA.resolve(text)


def test_a_box_partly_outside_the_area_still_places_every_text_inside() -> None:
    downtown_only = ServiceArea(bases=[AREA.bases[3]], radius_miles=6)
    for n in range(300):
        assert downtown_only.contains(downtown_only.resolve(f"place {n}"))


def test_another_city_needs_its_own_places_box() -> None:
    lisbon = [Base(name="baixa", latitude=38.7115, longitude=-9.1365)]
    with pytest.raises(ValidationError, match="places box must lie inside the area"):
        ServiceArea(bases=lisbon)
    area = ServiceArea(bases=lisbon, places=Box(south=38.68, north=38.74, west=-9.20, east=-9.08))
    assert area.contains(area.resolve("my pickup"))


def test_base_names_are_unique_and_boxes_ordered() -> None:
    with pytest.raises(ValidationError, match="unique"):
        ServiceArea(bases=[AREA.bases[0], AREA.bases[0]])
    with pytest.raises(ValidationError, match="south < north"):
        Box(south=1, north=0, west=0, east=1)


def test_service_area_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    class Settings(ServiceSettings):
        area: ServiceArea = ServiceArea()

    monkeypatch.setenv("AREA__RADIUS_MILES", "12.5")
    monkeypatch.setenv("AREA__MAX_TRIP_MILES", "30")
    loaded = Settings()
    assert loaded.area.radius_miles == 12.5
    assert loaded.area.max_trip_miles == 30
    assert [base.name for base in loaded.area.bases] == [base.name for base in AREA.bases]
