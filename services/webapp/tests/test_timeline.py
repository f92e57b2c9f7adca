"""The timeline a delivery's pages show, from its history (``pages.stage_entries``)."""

from __future__ import annotations

from typing import Any

from webapp.pages import stage_entries


def entry(second: int, stage: str, phase: str | None = None) -> dict[str, object]:
    found: dict[str, object] = {
        "at": f"2030-05-08T12:{second // 60:02d}:{second % 60:02d}.000Z",
        "stage": stage,
        "location": {"latitude": 47.6, "longitude": -122.3},
    }
    if phase:
        found["phase"] = phase
    return found


def shown(history: list[Any]) -> list[tuple[int, str, str | None]]:
    return [
        (int(e["at"][14:16]) * 60 + int(e["at"][17:19]), e["stage"], e["phase"])
        for e in stage_entries(history)
    ]


def test_a_stage_the_drone_reports_at_once_is_shown_once_as_its_report() -> None:
    history = [
        entry(0, "Created"),
        entry(0, "HeadedToPickup"),  # the plan: a drone assigned
        entry(1, "HeadedToPickup", "ToPickup"),  # the drone's first report, a second later
        entry(60, "HeadedToPickup", "AtPickup"),
        entry(90, "HeadedToDropoff", "ToDropoff"),
        entry(120, "Rescheduled"),
        entry(120, "HeadedToDropoff"),  # the new plan goes on from the drone's phase ...
        entry(300, "HeadedToDropoff", "AtDropoff"),  # ... reported minutes later: both stay
        entry(330, "Completed"),
    ]
    assert shown(history) == [
        (0, "Created", None),
        (1, "HeadedToPickup", "ToPickup"),
        (60, "HeadedToPickup", "AtPickup"),
        (90, "HeadedToDropoff", "ToDropoff"),
        (120, "Rescheduled", None),
        (120, "HeadedToDropoff", None),
        (300, "HeadedToDropoff", "AtDropoff"),
        (330, "Completed", None),
    ]


def test_a_stage_without_reports_stays_and_nothing_else_is_read() -> None:
    history = [entry(0, "Created"), entry(0, "HeadedToPickup"), "junk"]
    assert shown(history) == [(0, "Created", None), (0, "HeadedToPickup", None)]
    assert stage_entries({"not": "a list"}) == []
    odd = [{"at": "not a time", "stage": "HeadedToPickup"}, entry(1, "HeadedToPickup", "ToPickup")]
    assert len(stage_entries(odd)) == 2
