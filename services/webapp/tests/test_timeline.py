"""The timeline a delivery's pages show, from its history (``pages.stage_entries``)."""

from __future__ import annotations

from typing import Any

from webapp.pages import stage_entries


def at(second: int) -> str:
    return f"2030-05-08T12:{second // 60:02d}:{second % 60:02d}.000Z"


def entry(when: str, stage: str, phase: str | None = None) -> dict[str, object]:
    found: dict[str, object] = {
        "at": when,
        "stage": stage,
        "location": {"latitude": 47.6, "longitude": -122.3},
    }
    if phase:
        found["phase"] = phase
    return found


def shown(history: list[Any]) -> list[tuple[str, str, str | None]]:
    return [(e["at"], e["stage"], e["phase"]) for e in stage_entries(history)]


def test_a_stage_the_drone_reports_at_once_is_shown_once_as_its_report() -> None:
    history = [
        entry(at(0), "Created"),
        entry(at(0), "HeadedToPickup"),  # the plan: a drone assigned
        entry(at(1), "HeadedToPickup", "ToPickup"),  # the drone's first report, a second later
        entry(at(60), "HeadedToPickup", "AtPickup"),
        entry(at(90), "HeadedToDropoff", "ToDropoff"),
        entry(at(120), "Rescheduled"),
        entry(at(120), "HeadedToDropoff"),  # the new plan goes on from the drone's phase ...
        entry(at(300), "HeadedToDropoff", "AtDropoff"),  # ... reported minutes later: both stay
        entry(at(330), "Completed"),
    ]
    assert shown(history) == [
        (at(0), "Created", None),
        (at(1), "HeadedToPickup", "ToPickup"),
        (at(60), "HeadedToPickup", "AtPickup"),
        (at(90), "HeadedToDropoff", "ToDropoff"),
        (at(120), "Rescheduled", None),
        (at(120), "HeadedToDropoff", None),
        (at(300), "HeadedToDropoff", "AtDropoff"),
        (at(330), "Completed", None),
    ]


def test_a_stage_without_reports_stays_and_nothing_else_is_read() -> None:
    history = [entry(at(0), "Created"), entry(at(0), "HeadedToPickup"), "junk"]
    assert shown(history) == [(at(0), "Created", None), (at(0), "HeadedToPickup", None)]
    assert stage_entries({"not": "a list"}) == []
    odd = [
        {"at": "not a time", "stage": "HeadedToPickup"},
        entry(at(1), "HeadedToPickup", "ToPickup"),
    ]
    assert len(stage_entries(odd)) == 2


def test_an_empty_history_is_an_empty_timeline() -> None:
    # A delivery whose history is empty or could not be read (the page passes []) still has a
    # page: its timeline says "No stages yet".
    assert stage_entries([]) == []
    assert shown([entry(at(0), "Created")]) == [(at(0), "Created", None)]
