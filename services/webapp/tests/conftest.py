"""The web app's tests run against the real system: one native stack per session.

Redis, FerretDB, Mailpit and every service run as real processes on free loopback ports
(``dronetesting.stack``, as ``make run`` starts them, bearer tokens on), the web app among them;
the fleet simulator flies a fast fleet so a delivery completes in seconds. Tests talk to the web
app as a browser would (:class:`Browser`: cookies kept, no redirects followed, forms posted with
the page's CSRF token), or build the web app in process with their own settings
(:func:`webapp_settings`) against the same services.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import BrowserContext, Playwright, sync_playwright

from dronecommon.auth.devissuer import KEY_FILE_NAME, SERVICE_AUDIENCES, DevIssuer
from dronecommon.auth.roles import DELIVERIES_WRITE
from dronetesting.servers import free_port
from dronetesting.stack import SERVICE_PORTS, Stack, StackConfig
from webapp.settings import WebappSettings

# A fast fleet: ten times the drones' speed, a second at each stop, a fix every quarter second,
# so a flight of a few miles takes under a minute, slow enough to watch the drone move on a map.
# A drone silent for three seconds is stale (the web app and the delivery service agree).
FAST_FLEET = {
    "SIMULATOR_SPEED_FACTOR": "10",
    "SIMULATOR_HANDLING_SECONDS": "1",
    "SIMULATOR_TELEMETRY_INTERVAL": "0.25",
    "SIMULATOR_TICKS_PER_INTERVAL": "2",
    "DELIVERY_LIVE__HANDLING_SECONDS": "1",
    "DELIVERY_LIVE__STALE_AFTER": "3",
    "WEBAPP_TRACKING_STALE_SECONDS": "3",
}
STACK_ENV = {
    **FAST_FLEET,
    "WORKFLOW_QUEUE__RECEIVE_WAIT": "0.5",
    # The notifier sends at once.
    "NOTIFIER_OUTBOX__POLL_INTERVAL": "0.2",
    # Many schedules from the test accounts: the limits are ingestion's own tests.
    "INGESTION_LIMITS__REQUESTS_PER_MINUTE": "100000",
    "INGESTION_LIMITS__BURST": "10000",
    "INGESTION_LIMITS__MAX_IN_PROGRESS": "10000",
    "WEBAPP_LIST_REFRESH_SECONDS": "1",
    # One signing key across restarts of the web app: sessions survive them.
    "WEBAPP_SESSION__SECRET_KEY": "web-app-tests-only-" + "0" * 24,
}

# Places inside the default service area: a pickup downtown, a drop-off some four miles north.
PICKUP = "47.6097,-122.3331"
DROPOFF = "47.6690,-122.3000"
OUTSIDE = "40.7128,-74.0060"  # New York: far outside

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REQUEST_KEY = re.compile(r'name="request_key" value="([^"]+)"')


@dataclass
class WebStack:
    stack: Stack
    log: Path

    @property
    def config(self) -> StackConfig:
        return self.stack.config

    @property
    def url(self) -> str:
        return self.config.url("webapp")

    @property
    def inbox(self) -> str:
        return self.config.inbox_url

    @property
    def redis_url(self) -> str:
        return self.config.redis_url

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    data_dir = tmp_path_factory.mktemp("webstack")
    config = StackConfig(
        data_dir=data_dir,
        redis_port=free_port(),
        mongo_port=free_port(),
        mailpit_smtp_port=free_port(),
        mailpit_http_port=free_port(),
        ports={service: free_port() for service in SERVICE_PORTS},
        extra_env=dict(STACK_ENV),
    )
    log_path = data_dir / "stack.log"
    log: IO[str] = log_path.open("w", buffering=1)
    stack = Stack(config, out=log)
    try:
        try:
            stack.start(timeout=150)
        except BaseException:
            stack.stop(grace=10)
            raise
        yield WebStack(stack, log_path)
    finally:
        stack.stop(grace=15)
        log.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    funcargs = getattr(item, "funcargs", {})
    found = funcargs.get("web_stack")
    if report.failed and isinstance(found, WebStack):
        report.sections.append(("stack log (tail)", found.log_tail()))
    return report


class Browser:
    """A browser without a script engine: cookies kept, redirects not followed."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(
            base_url=base_url,
            follow_redirects=False,
            timeout=httpx.Timeout(30),
            trust_env=False,
            headers={"Accept": "text/html"},
        )

    def close(self) -> None:
        self.client.close()

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.client.get(path, **options)

    def post(self, path: str, form: dict[str, str], **options: Any) -> httpx.Response:
        return self.client.post(path, data=form, **options)

    def csrf(self, path: str = "/signin") -> str:
        """The CSRF token the page at ``path`` carries (its session's)."""
        page = self.get(path)
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found, "no csrf_token in the page"
        return html.unescape(found.group(1))

    def sign_in(self, user: str, account: str = "contoso", *, operator: bool = False) -> None:
        form = {"csrf_token": self.csrf(), "account": account, "user": user, "next": "/deliveries"}
        if operator:
            form["operator"] = "on"
        answer = self.post("/signin", form)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/deliveries"

    def schedule(self, **fields: str) -> httpx.Response:
        """Post the schedule form (as its page serves it) with ``fields`` filled in."""
        page = self.get("/deliveries/new")
        assert page.status_code == 200, page.text
        csrf = CSRF.search(page.text)
        key = REQUEST_KEY.search(page.text)
        assert csrf
        assert key
        form = {
            "csrf_token": html.unescape(csrf.group(1)),
            "request_key": html.unescape(key.group(1)),
            "pickup": PICKUP,
            "dropoff": DROPOFF,
            "size": "Small",
            "weight": "2",
            "confirmation": "None",
        }
        form.update(fields)
        return self.post("/deliveries/new", form)

    def page_once_there(self, delivery_id: str, action: str) -> str:
        """A delivery's page ``/deliveries/{id}/{action}``, once the delivery service has the
        delivery (scheduling goes through the queue)."""

        def ready() -> str | None:
            found = self.get(f"/deliveries/{delivery_id}/{action}")
            return found.text if found.status_code == 200 else None

        page: str = wait_until(ready, 30, f"the delivery's {action} page")
        return page

    def scheduled_id(self, **fields: str) -> str:
        answer = self.schedule(**fields)
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        assert location.startswith("/deliveries/")
        return location.removeprefix("/deliveries/")


@pytest.fixture
def browser(web_stack: WebStack) -> Iterator[Browser]:
    found = Browser(web_stack.url)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def another_browser(web_stack: WebStack) -> Iterator[Browser]:
    found = Browser(web_stack.url)
    try:
        yield found
    finally:
        found.close()


def refuse_change(web_stack: WebStack, delivery_id: str, refusal: dict[str, Any]) -> None:
    """Record a refused change on the delivery, as the workflow does when the drone scheduler
    refuses a re-plan that ingestion accepted (``POST .../refusals``, the workflow's token)."""
    issuer = DevIssuer.load(web_stack.config.issuer_dir / KEY_FILE_NAME)
    token = issuer.mint(
        audience=SERVICE_AUDIENCES["delivery"],
        subject="workflow",
        azp="workflow",
        oid="workflow",
        roles=(DELIVERIES_WRITE,),
    )
    answer = httpx.post(
        f"{web_stack.config.url('delivery')}/api/deliveries/{delivery_id}/refusals",
        json=refusal,
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
        timeout=30,
    )
    assert answer.status_code == 204, answer.text


def webapp_settings(web_stack: WebStack, **overrides: Any) -> WebappSettings:
    """Settings of an in-process web app that calls the stack's services."""
    config = web_stack.config
    values: dict[str, Any] = {
        "redis": {"url": config.redis_url},
        "log_json": False,
        "signin": {"mode": "development"},
        "auth": {
            "enabled": False,
            "dev_signing_key_file": str(config.issuer_dir / "signing-key.pem"),
        },
        **{f"{name}_url": config.url(name) for name in ("ingestion", "delivery", "workflow")},
        "simulator_url": config.url("simulator"),
        "notifier_url": config.url("notifier"),
    }
    values.update(overrides)
    return WebappSettings(**values)


def wait_until(check: Any, within: float, what: str, every: float = 0.2) -> Any:
    """Call ``check()`` until it returns something truthy; that value."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:g}s: {what}")
        time.sleep(every)


# -- the real browser (Debian's chromium, driven by Playwright) ----------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as found:
        yield found


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Chromium]:
    executable = shutil.which("chromium")
    assert executable, "chromium is missing: make setup installs it (apt-get install chromium)"
    # Chromium's sandbox needs user namespaces, which root (and most containers) lack.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    browser = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def context(chromium: Chromium, web_stack: WebStack) -> Iterator[BrowserContext]:
    found = chromium.new_context(
        base_url=web_stack.url, viewport={"width": 1280, "height": 900}, locale="en-GB"
    )
    try:
        yield found
    finally:
        found.close()
