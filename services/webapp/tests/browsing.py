"""What the browser tests share: a person's steps in the web app (sign in, schedule), waiting on
the page, the screenshots and Mailpit's inbox. The browser itself (``chromium``, ``context``) is
a fixture of conftest.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

from dronetesting.servers import project_root

from .conftest import DROPOFF, PICKUP, WebStack, wait_until

REPORTS = project_root() / "reports" / "browser"
AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
# What axe-core may not find anywhere (its impact levels).
BLOCKING = {"serious", "critical"}
# The stage as the API names it (the badge shows its label: "Headed to drop-off").
STAGE = "document.getElementById('stage')?.dataset.stage"
BANNER = "document.getElementById('tracking-banner')"


def screenshot(page: Page, name: str) -> Path:
    REPORTS.mkdir(parents=True, exist_ok=True)
    path = REPORTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def sign_in(page: Page, user: str, account: str = "contoso", *, operator: bool = False) -> None:
    page.goto("/signin")
    page.get_by_label("Account", exact=True).fill(account)
    page.get_by_label("User", exact=True).fill(user)
    if operator:
        page.get_by_label("Operator").check()
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/deliveries")


def schedule(
    page: Page, *, email: str | None = None, pickup: str = PICKUP, dropoff: str = DROPOFF
) -> str:
    """Fill the schedule form as a person would; the new delivery's id once its page opens."""
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Schedule", exact=True
    ).click()
    page.wait_for_url("**/deliveries/new")
    form = page.locator("#schedule-form")
    form.get_by_label("Pickup", exact=True).fill(pickup)
    form.get_by_label("Drop-off", exact=True).fill(dropoff)
    form.get_by_label("Weight (pounds)", exact=True).fill("2.5")
    if email:
        form.get_by_label("E-mail", exact=True).fill(email)
    form.get_by_role("button", name="Schedule", exact=True).click()
    page.wait_for_url(re.compile(r"/deliveries/[0-9a-f-]{36}$"))
    delivery_id = page.url.rsplit("/", 1)[1]
    # The "scheduling" page opens the delivery's own page as soon as the service has it.
    page.wait_for_selector("#details-title", timeout=30_000)
    return delivery_id


def wait_for(page: Page, expression: str, within: float, what: str) -> None:
    """Until the JavaScript ``expression`` is true in the page. (Playwright's wait_for_function
    evaluates its predicate with eval, which the app's policy forbids, rightly.)"""
    wait_until(lambda: page.evaluate(expression), within, what)


def count_after_reload(page: Page, selector: str) -> int:
    page.reload()
    return page.locator(selector).count()


def drone_position(page: Page) -> str | None:
    found: Any = page.evaluate("document.getElementById('map')?.dataset.drone ?? null")
    return found if isinstance(found, str) else None


def inbox(web_stack: WebStack, address: str) -> list[dict[str, Any]]:
    """The messages Mailpit holds for ``address`` (its HTTP API)."""
    answer = httpx.get(
        f"{web_stack.inbox}/api/v1/search", params={"query": f'to:"{address}"'}, trust_env=False
    )
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()["messages"]
    return found


def subjects(web_stack: WebStack, address: str) -> list[str]:
    return [str(message["Subject"]) for message in inbox(web_stack, address)]


def message_text(web_stack: WebStack, message_id: str) -> str:
    answer = httpx.get(f"{web_stack.inbox}/api/v1/message/{message_id}", trust_env=False)
    answer.raise_for_status()
    return str(answer.json()["Text"])
