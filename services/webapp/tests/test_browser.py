"""The web app in a real browser: Debian's ``chromium``, headless, driven by Playwright.

Over the test stack (every service, Mailpit, the fleet simulator flying a fast fleet) a person
signs in, schedules a delivery asking to be told by e-mail, watches the drone move on the map and
the ETA change, reads the e-mail in Mailpit, opens the public page from the e-mail's link (no
personal data there) and sees the delivery Completed; an operator sees the fleet on ``/ops``.
The tracking banner appears when the connection drops and when the drone goes silent. Every page,
at a desktop's and a phone's width, fits the window (wide tables scroll in their own box) and
passes axe-core (the npm-pinned copy, injected from its file); the schedule form is reachable with
the keyboard alone. Screenshots go to ``reports/browser/``.

Playwright's own browser download is never used: the tests launch ``chromium`` by its path
(``make setup`` installs it).
"""

from __future__ import annotations

import re
import signal
import uuid
from functools import partial
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext

from .browsing import (
    AXE,
    BANNER,
    BLOCKING,
    STAGE,
    count_after_reload,
    drone_position,
    inbox,
    message_text,
    schedule,
    screenshot,
    sign_in,
    subjects,
    wait_for,
)
from .conftest import DROPOFF, PICKUP, WebStack, refuse_change, wait_until
from .test_refused import refused_drop_off

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


def test_a_customer_schedules_watches_the_drone_fly_and_gets_the_package(
    context: BrowserContext, chromium: Browser, web_stack: WebStack
) -> None:
    page = context.new_page()
    sign_in(page, "bella")
    address = f"bella.{uuid.uuid4().hex[:8]}@example.com"
    delivery_id = schedule(page, email=address)
    short = delivery_id[:8]
    assert page.locator("#delivery-eta").get_attribute("datetime")

    # The drone appears on the map and moves; the ETA moves with the live position.
    first = wait_until(lambda: drone_position(page), 60, "the drone on the map")
    assert page.locator("#map .drone-marker").count() == 1
    first_eta = page.locator("#delivery-eta").get_attribute("datetime")
    first_left = page.locator("#delivery-eta-left").inner_text()
    wait_until(lambda: drone_position(page) not in (None, first), 60, "the drone moving")
    wait_until(
        lambda: page.locator("#delivery-eta").get_attribute("datetime") != first_eta,
        60,
        "the ETA changing",
    )
    wait_until(
        lambda: page.locator("#delivery-eta-left").inner_text() != first_left,
        10,
        "the countdown changing",
    )
    wait_for(page, "document.getElementById('telemetry').textContent.includes('Live')", 10, "live")
    # On the way to the drop-off, the package picked up: the picture of the README.
    wait_for(page, f"{STAGE} === 'HeadedToDropoff'", 60, "the package picked up")
    assert page.locator("#pickup-eta-left").inner_text() == "picked up"
    # People read words, not the API's names: the badge, the drone's phase, the timeline.
    assert page.locator("#stage").inner_text() == "Headed to drop-off"
    phases = ("at the pickup", "flying to the drop-off", "at the drop-off")
    assert page.locator("#phase").inner_text() in {f"drone {phase}" for phase in phases}
    assert "Headed to pickup" in page.locator("#timeline").inner_text()
    assert "HeadedTo" not in page.locator("main").inner_text()
    halfway = (float(PICKUP.split(",")[0]) + float(DROPOFF.split(",")[0])) / 2
    wait_until(
        lambda: float((drone_position(page) or "0,0").split(",")[0]) >= halfway - 0.005,
        60,
        "the drone about halfway",
    )
    screenshot(page, "tracking")

    # The e-mail: a drone is on its way, with the public tracking link.
    wait_until(
        lambda: f"Delivery {short}: a drone is on its way" in subjects(web_stack, address),
        60,
        "the Assigned e-mail in Mailpit",
    )
    assigned = next(m for m in inbox(web_stack, address) if "on its way" in str(m["Subject"]))
    link = f"{web_stack.url}/track/{delivery_id}"
    assert link in message_text(web_stack, str(assigned["ID"]))

    # The public page, opened from the e-mail's link by someone who is not signed in.
    stranger = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        public = stranger.new_page()
        public.goto(link)
        public.wait_for_selector("#stage")
        content = public.content()
        for private in (address, "bella", "contoso"):
            assert private not in content, private
        assert public.locator("form[action='/signout']").count() == 0
        screenshot(public, "public-tracking")
    finally:
        stranger.close()

    # Completed: the stage, the timeline, the countdown and the e-mail say so.
    wait_for(page, f"{STAGE} === 'Completed'", 150, "the delivery Completed")
    assert page.locator("#timeline li[data-stage='Completed']").count() >= 1
    assert page.locator("#delivery-eta-left").inner_text() == "delivered"
    assert page.locator("#tracking-banner").is_hidden()
    wait_until(
        lambda: f"Delivery {short}: delivered" in subjects(web_stack, address),
        60,
        "the Completed e-mail in Mailpit",
    )
    page.reload()
    page.wait_for_selector("#notifications table")
    assert address in page.locator("#notifications").inner_text()
    screenshot(page, "completed")


def test_my_deliveries_keep_themselves_up_to_date(context: BrowserContext) -> None:
    page = context.new_page()
    sign_in(page, "milo")
    delivery_id = schedule(page, pickup="Milo's studio", dropoff="Pike Place Market")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My deliveries").click()
    page.wait_for_url("**/deliveries")
    row = page.locator(f"#deliveries tr[data-id='{delivery_id}']")
    stage = f"document.querySelector(\"#deliveries tr[data-id='{delivery_id}'] .stage\")"
    assert page.evaluate(f"{stage}.dataset.stage") in {"HeadedToPickup", "HeadedToDropoff"}
    # The page's script redraws the list from /deliveries.json (no reload): the ETA counts down
    # and the stage moves on to Completed, in words, announced; where it went stays in its row.
    assert row.locator(".place").inner_text() == "Pike Place Market"
    assert row.locator("[data-countdown]").count() == 1
    screenshot(page, "deliveries")
    wait_for(page, f"{stage}.dataset.stage === 'Completed'", 150, "the delivery Completed")
    assert page.locator("#list-updated").inner_text().startswith("Updated")
    assert row.locator(".stage").inner_text() == "Completed"
    announced = page.locator("#list-announcer").text_content() or ""
    assert f"Delivery {delivery_id[:8]} is now Completed." in announced
    assert row.locator(".place").inner_text() == "Pike Place Market"
    assert row.locator(".place").get_attribute("title") == "from Milo's studio"
    assert row.locator(".eta").inner_text() == "—"


def test_operators_see_the_fleet(context: BrowserContext) -> None:
    page = context.new_page()
    sign_in(page, "opal", operator=True)
    delivery_id = schedule(page)  # a drone in the air
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Operations").click()
    page.wait_for_url("**/ops")
    wait_for(page, "Number(document.getElementById('map')?.dataset.drones || 0) > 0", 60, "drones")
    assert int(page.locator("#kpi-inflight").inner_text()) >= 1
    assert page.locator("#active tbody tr:not(.empty)").count() >= 1
    assert page.locator("#kpi-depth").inner_text().isdigit()
    assert page.locator("#kpi-deadletters").inner_text().isdigit()
    counts = page.locator("#phase-counts [data-phase]")
    assert counts.count() == 5
    # Its drone's row says when the phase ends (the drone's plan), counting down each second.
    row = page.locator(f"#active tbody tr:has(a[href='/deliveries/{delivery_id}'])")
    ends = row.locator(".phase-ends .countdown")
    wait_until(
        lambda: ends.count() == 1 and re.fullmatch(r"in \d+ min \d\d s", ends.inner_text()),
        30,
        "a countdown in the row of its drone",
    )
    first = ends.inner_text()
    wait_until(lambda: ends.inner_text() != first, 10, "the countdown moving")
    screenshot(page, "ops")


def test_the_banner_says_when_tracking_is_lost(
    context: BrowserContext, web_stack: WebStack
) -> None:
    page = context.new_page()
    sign_in(page, "dora")
    schedule(page)
    wait_until(lambda: drone_position(page), 60, "the drone on the map")
    banner = page.locator("#tracking-banner")
    assert banner.is_hidden()

    # The connection drops (the web app crashes): the page says so, and recovers when the web
    # app is back (the session survives in Redis, signed with the same key).
    web_stack.stack.processes["webapp"].signal(signal.SIGKILL)
    web_stack.stack.processes["webapp"].wait(10)
    try:
        wait_for(page, f"{BANNER}.dataset.reason === 'stream'", 30, "the connection-lost banner")
        assert "connection dropped" in banner.inner_text()
        screenshot(page, "tracking-lost-connection")
    finally:
        web_stack.stack.start_service("webapp")
        web_stack.stack.wait_ready(60)
    wait_for(page, f"{BANNER}.hidden", 30, "the banner gone")

    # The drone goes silent (the simulator is paused): the position is stale.
    simulator = web_stack.stack.processes["simulator"]
    simulator.signal(signal.SIGSTOP)
    try:
        if page.evaluate(f"{STAGE}") in ("Completed", "Cancelled"):
            pytest.fail("the delivery ended before the drone could be paused")
        wait_for(page, f"{BANNER}.dataset.reason === 'stale'", 30, "the stale banner")
        assert "no report from the drone" in banner.inner_text()
        screenshot(page, "tracking-lost-stale")
    finally:
        simulator.signal(signal.SIGCONT)
    wait_for(page, f"{BANNER}.hidden", 30, "the banner gone")


PAGES = (
    "/",
    "/signin",
    "/deliveries",
    "/deliveries/new",
    "{track}",
    "{track}/change",
    "{track}/cancel",
    "{track}/notify",
    "{public}",
    "/ops",
)
# Where the page is wider than the window, in CSS pixels (0: it fits).
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_every_page_fits_the_screen_without_serious_accessibility_violations(
    chromium: Browser, web_stack: WebStack, width: int, height: int
) -> None:
    """Every page at a desktop's and a phone's width: nothing makes the page scroll sideways (a
    wide table scrolls inside its box), and axe-core finds nothing serious."""
    # axe-core is injected from the npm-pinned file; the app's policy forbids injected scripts,
    # so this context alone bypasses it (the pages themselves are unchanged).
    context = chromium.new_context(
        base_url=web_stack.url, viewport={"width": width, "height": height}, bypass_csp=True
    )
    try:
        page = context.new_page()
        user = f"axel{width}"
        sign_in(page, user, operator=True)
        # With an e-mail address: the delivery's page has its table of notifications.
        delivery_id = schedule(page, email=f"{user}.{uuid.uuid4().hex[:8]}@example.com")
        # A refused change: the delivery's page and its change page show their alert.
        refuse_change(web_stack, delivery_id, refused_drop_off("Pier 9, Tukwila"))
        found: dict[str, list[str]] = {}
        for path in PAGES:
            target = path.format(track=f"/deliveries/{delivery_id}", public=f"/track/{delivery_id}")
            page.goto(target)
            page.wait_for_load_state("load")
            wanted = {"{track}": "#notifications table", "/ops": "#active a"}.get(path)
            if wanted:  # the tables that are widest when they have rows
                wait_until(partial(count_after_reload, page, wanted), 30, wanted, every=1)
            overflow = page.evaluate(OVERFLOW)
            if overflow > 0:
                found.setdefault(target, []).append(f"{overflow} px wider than the window")
            page.add_script_tag(path=str(AXE))
            result: dict[str, Any] = page.evaluate(
                "axe.run(document, {resultTypes: ['violations']})"
            )
            blocking = [
                f"{v['id']} ({v['impact']}): {v['help']} — "
                + ", ".join(str(node["target"]) for node in v["nodes"][:3])
                for v in result["violations"]
                if v["impact"] in BLOCKING
            ]
            if blocking:
                found.setdefault(target, []).extend(blocking)
        assert found == {}, found
    finally:
        context.close()


def test_the_schedule_form_is_usable_with_the_keyboard(context: BrowserContext) -> None:
    page = context.new_page()
    sign_in(page, "kim")
    page.goto("/deliveries/new")
    # The first Tab reaches the skip link; following it lands in the main content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    wanted = ["pickup", "dropoff", "size", "weight", "tag", "expedited", "confirmation"]
    reached: list[str] = []
    labels: dict[str, str] = {}
    for _ in range(40):
        page.keyboard.press("Tab")
        focused: dict[str, Any] = page.evaluate(
            """() => {
              const element = document.activeElement;
              const label = element.id
                ? document.querySelector(`label[for="${element.id}"]`) : null;
              return {id: element.id, label: label ? label.textContent.trim() : ""};
            }"""
        )
        if focused["id"] in wanted and focused["id"] not in reached:
            reached.append(focused["id"])
            labels[focused["id"]] = focused["label"]
        if focused["id"] == "schedule-submit":
            break
    assert reached == wanted  # in the order the form reads
    assert all(labels.values()), labels
    # Typing and Enter schedule without a mouse.
    page.focus("#pickup")
    page.keyboard.type(PICKUP)
    page.focus("#dropoff")
    page.keyboard.type(DROPOFF)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/deliveries/[0-9a-f-]{36}$"), timeout=30_000)
    page.wait_for_selector("#details-title", timeout=30_000)
