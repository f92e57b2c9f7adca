"""Tell someone else about a delivery: the form on its own page, the delivery service's refusals
at their fields, and who is told now."""

from __future__ import annotations

import html
import re

from webapp.actions import NOTHING_TO_TELL

from .conftest import Browser
from .test_schedule import field_error, value_of


def notify_page(browser: Browser, delivery_id: str) -> str:
    return browser.page_once_there(delivery_id, "notify")


def told(page: str) -> list[str]:
    found = re.search(r'<ul id="told">(.*?)</ul>', page, re.S)
    items = re.findall(r"<li>([^<]+) <span", found.group(1)) if found else []
    return [html.unescape(item) for item in items]


def tell(browser: Browser, delivery_id: str, **fields: str) -> tuple[int, str, str]:
    """Post the form; (status, location, page)."""
    form = {"csrf_token": browser.csrf(f"/deliveries/{delivery_id}/notify"), **fields}
    answer = browser.post(f"/deliveries/{delivery_id}/notify", form)
    return answer.status_code, answer.headers.get("location", ""), answer.text


def test_someone_else_is_told_from_now_on(browser: Browser) -> None:
    browser.sign_in("nadia", "fabrikam")
    delivery_id = browser.scheduled_id(email="nadia@example.com")
    assert told(notify_page(browser, delivery_id)) == ["nadia@example.com"]

    status, location, _ = tell(
        browser, delivery_id, email="omar@example.com", sms="+1 206 555 0100"
    )
    assert (status, location) == (303, f"/deliveries/{delivery_id}")
    page = browser.get(location).text
    assert "From now on, omar@example.com, +1 206 555 0100 will be told too." in html.unescape(page)
    assert 'id="notify-link"' in page
    assert told(notify_page(browser, delivery_id)) == [
        "nadia@example.com",
        "omar@example.com",
        "+12065550100",
    ]
    # Whoever is named again is listed once (and told once: the notifier sends each event to
    # each address once).
    assert tell(browser, delivery_id, email="omar@example.com")[0] == 303
    assert told(notify_page(browser, delivery_id)).count("omar@example.com") == 1


def test_the_services_refusals_show_at_their_fields_and_nothing_is_added(browser: Browser) -> None:
    browser.sign_in("pablo", "fabrikam")
    delivery_id = browser.scheduled_id()
    assert told(notify_page(browser, delivery_id)) == []

    status, _, page = tell(browser, delivery_id, email="not an address", webhook="ftp://x")
    assert status == 400
    assert "Please correct the fields marked below." in page
    assert "@" in field_error(page, "email")
    assert field_error(page, "webhook")
    assert value_of(page, "email") == "not an address"
    assert value_of(page, "webhook") == "ftp://x"

    status, _, page = tell(browser, delivery_id, email=" ", sms="")
    assert status == 400
    assert html.unescape(re.search(r'id="form-problem">([^<]+)<', page).group(1)) == (  # type: ignore[union-attr]
        NOTHING_TO_TELL
    )
    assert told(notify_page(browser, delivery_id)) == []
