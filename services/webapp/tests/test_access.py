"""Who sees what: my deliveries are mine (another user or account sees nothing), the public page
shows no personal data, ``/ops`` is for operators."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from .conftest import Browser, wait_until

EMAIL = "owner.private@example.com"
PHONE = "+12065550123"


def page_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', page, re.S)
    assert found, "no page data"
    loaded: dict[str, Any] = json.loads(found.group(1))
    return loaded


def listed(browser: Browser) -> list[str]:
    answer = browser.get("/deliveries.json", headers={"Accept": "application/json"})
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def test_my_deliveries_are_mine_alone(browser: Browser, another_browser: Browser) -> None:
    browser.sign_in("olivia", "northwind")
    delivery_id = browser.scheduled_id(email=EMAIL)
    wait_until(lambda: delivery_id in listed(browser), 30, "the delivery in her list")
    mine = browser.get("/deliveries")
    assert mine.status_code == 200
    assert f'data-id="{delivery_id}"' in mine.text

    # Another user of the same account, and the same user name in another account.
    for user, account in (("peter", "northwind"), ("olivia", "southwind")):
        another_browser.client.cookies.clear()
        another_browser.sign_in(user, account)
        assert listed(another_browser) == []
        theirs = another_browser.get("/deliveries")
        assert delivery_id not in theirs.text
        refused = another_browser.get(f"/deliveries/{delivery_id}")
        assert refused.status_code == 404
        assert EMAIL not in refused.text
        for suffix in ("/details.json", "/events"):
            script = another_browser.get(
                f"/deliveries/{delivery_id}{suffix}", headers={"Accept": "application/json"}
            )
            assert script.status_code == 404, suffix
            assert script.headers["content-type"] == "application/problem+json"
        for asking in ("/change", "/cancel", "/notify"):
            asked = another_browser.get(f"/deliveries/{delivery_id}{asking}")
            assert asked.status_code == 404, asking
            assert EMAIL not in asked.text
        told = another_browser.post(
            f"/deliveries/{delivery_id}/notify",
            {"csrf_token": another_browser.csrf("/deliveries"), "email": "eve@example.com"},
        )
        assert told.status_code == 404
        moved = another_browser.post(
            f"/deliveries/{delivery_id}/change",
            {"csrf_token": another_browser.csrf("/deliveries"), "dropoff": "47.6,-122.3"},
        )
        assert moved.status_code == 404
        cancel = another_browser.post(
            f"/deliveries/{delivery_id}/cancel",
            {"csrf_token": another_browser.csrf("/deliveries")},
        )
        assert cancel.status_code == 404
    # Still hers, where she asked, not cancelled.
    details = browser.get(
        f"/deliveries/{delivery_id}/details.json", headers={"Accept": "application/json"}
    )
    assert details.status_code == 200
    assert details.json()["status"]["stage"] != "Cancelled"
    assert details.json()["places"]["dropoff"]["at"] != [47.6, -122.3]
    page = browser.get(f"/deliveries/{delivery_id}").text
    assert f"Told: {EMAIL}" in page
    assert "eve@example.com" not in page


def test_the_public_page_shows_the_delivery_and_no_personal_data(
    browser: Browser, web_stack: Any
) -> None:
    browser.sign_in("quentin", "northwind")
    delivery_id = browser.scheduled_id(email=EMAIL, sms=PHONE, tag="birthday-present")
    wait_until(lambda: delivery_id in listed(browser), 30, "the delivery in his list")

    with httpx.Client(base_url=web_stack.url, trust_env=False) as stranger:  # no session
        page = stranger.get(f"/track/{delivery_id}")
        assert page.status_code == 200
        assert "set-cookie" not in page.headers  # nobody is signed in for this
        assert delivery_id in page.text
        data = page_data(page.text)
        assert data["public"] is True
        assert data["status"]["stage"]
        assert data["route"]["pickup"]
        assert data["route"]["dropoff"]
        # The stages so far, from the public history (when, not where).
        assert [entry["stage"] for entry in data["timeline"]][:1] == ["Created"]
        assert "No stages yet." not in page.text
        status = stranger.get(f"/track/{delivery_id}/status.json")
        assert status.status_code == 200
        for text in (page.text, status.text):
            for private in (
                EMAIL,
                PHONE,
                "quentin",
                "northwind",
                "birthday-present",
                "ownerId",
                "owner",
            ):
                assert private not in text, private
        assert "droneId" not in json.dumps(status.json())
        # An unknown delivery is a plain 404.
        assert stranger.get("/track/no-such-delivery").status_code == 404


def test_ops_is_for_operators(browser: Browser, another_browser: Browser) -> None:
    assert browser.get("/ops").status_code == 303  # sign in first
    browser.sign_in("rita", "northwind")
    refused = browser.get("/ops")
    assert refused.status_code == 403
    assert "for operators" in refused.text
    script = browser.get("/ops.json", headers={"Accept": "application/json"})
    assert script.status_code == 403
    assert script.json()["type"].endswith("operators-only")
    assert 'href="/ops"' not in browser.get("/deliveries").text  # no link to it either

    another_browser.sign_in("otto", "contoso", operator=True)
    page = another_browser.get("/ops")
    assert page.status_code == 200
    assert 'href="/ops"' in page.text
    for kpi in ("kpi-inflight", "kpi-depth", "kpi-pending", "kpi-deadletters", "kpi-throughput"):
        assert f'id="{kpi}"' in page.text
    data = another_browser.get("/ops.json", headers={"Accept": "application/json"}).json()
    assert data["fleet"]["error"] is None, data["fleet"]
    assert data["queue"]["error"] is None, data["queue"]
    assert isinstance(data["queue"]["depth"], int)
    assert isinstance(data["queue"]["deadLetters"], int)
    assert isinstance(data["queue"]["enqueuedTotal"], int)
    assert set(data["fleet"]["byPhase"]) == {
        "ToPickup",
        "AtPickup",
        "ToDropoff",
        "AtDropoff",
        "Returning",
    }
