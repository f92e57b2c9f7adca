"""Every script and stylesheet is the app's own (no CDN), the browser libraries at the versions
the npm lock pins; a Content Security Policy without inline scripts on every page; a tile layer
only when a tiles URL is configured."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

from dronetesting.apps import app_client
from webapp.main import create_app

from .conftest import Browser, WebStack, webapp_settings

WEBAPP = Path(__file__).resolve().parents[1]
LOCK = json.loads((WEBAPP / "package-lock.json").read_text())


def pinned(package: str) -> str:
    version: str = LOCK["packages"][f"node_modules/{package}"]["version"]
    return version


class Assets(HTMLParser):
    """The scripts, stylesheets and images a page loads, and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[dict[str, str | None]] = []
        self.inline_styles = 0
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        if "style" in found:
            self.inline_styles += 1
        if tag == "script":
            if found.get("src"):
                self.urls.append(str(found["src"]))
            else:
                self.inline_scripts.append(found)
        elif tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))
        elif tag == "img" and found.get("src"):
            self.urls.append(str(found["src"]))
        elif tag == "style":
            self.inline_styles += 1


def assets_of(page: str) -> Assets:
    parser = Assets()
    parser.feed(page)
    return parser


def pages(browser: Browser, operator: Browser) -> dict[str, str]:
    """Every kind of page, as served."""
    found = {"/": browser.get("/").text, "/signin": browser.get("/signin").text}
    browser.sign_in("uma", "tailspin")
    delivery_id = browser.scheduled_id()
    found["/deliveries/new"] = browser.get("/deliveries/new").text
    found["/deliveries"] = browser.get("/deliveries").text
    found["/deliveries/{id}"] = browser.get(f"/deliveries/{delivery_id}").text
    found["/track/{id}"] = browser.get(f"/track/{delivery_id}").text
    operator.sign_in("oscar", "tailspin", operator=True)
    found["/ops"] = operator.get("/ops").text
    return found


def test_pages_load_only_the_apps_own_assets_without_inline_scripts(
    browser: Browser, another_browser: Browser
) -> None:
    for path, page in pages(browser, another_browser).items():
        assets = assets_of(page)
        assert assets.urls, path
        for url in assets.urls:
            assert url.startswith("/static/"), (path, url)
            assert "?v=" in url, (path, url)  # versioned by content
            assert browser.get(url).status_code == 200, (path, url)
        # Data for the scripts rides as JSON, never as code.
        for script in assets.inline_scripts:
            assert script.get("type") == "application/json", (path, script)
        assert assets.handlers == [], path
        assert assets.inline_styles == 0, path


def test_leaflet_is_served_at_the_locked_version_and_axe_core_is_at_hand() -> None:
    static = WEBAPP / "src" / "webapp" / "static" / "vendor" / "leaflet"
    assert f"Leaflet {pinned('leaflet')}," in (static / "leaflet.js").read_text()[:200]
    assert (static / "leaflet.css").is_file()
    assert (static / "images" / "marker-icon.png").is_file()
    axe = WEBAPP / "node_modules" / "axe-core" / "axe.min.js"
    assert f"axe v{pinned('axe-core')}" in axe.read_text()[:100]
    # Both are pinned exactly in package.json too (no ranges), with integrity hashes in the lock.
    manifest = json.loads((WEBAPP / "package.json").read_text())
    assert manifest["dependencies"] == {"leaflet": pinned("leaflet")}
    assert manifest["devDependencies"] == {"axe-core": pinned("axe-core")}
    for package in ("leaflet", "axe-core"):
        assert LOCK["packages"][f"node_modules/{package}"]["integrity"].startswith("sha512-")


def test_leaflet_is_served_by_the_app(web_stack: WebStack) -> None:
    with httpx.Client(base_url=web_stack.url, trust_env=False) as client:
        script = client.get("/static/vendor/leaflet/leaflet.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith(("text/javascript", "application/"))
        assert f"Leaflet {pinned('leaflet')}," in script.text[:200]
        assert client.get("/static/vendor/leaflet/leaflet.css").status_code == 200
        # The test-only library is never served.
        assert client.get("/static/vendor/axe-core/axe.min.js").status_code == 404
        assert client.get("/static/../package.json").status_code == 404


def csp(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def test_every_answer_carries_the_security_headers(browser: Browser) -> None:
    for path in ("/", "/signin", "/track/unknown-id", "/static/css/app.css"):
        answer = browser.get(path)
        policy = csp(answer)
        assert policy["script-src"] == ["'self'"], path
        assert policy["style-src"] == ["'self'"], path
        assert policy["connect-src"] == ["'self'"], path
        assert policy["img-src"] == ["'self'", "data:"], path  # no tile server configured
        assert policy["object-src"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        assert policy["form-action"] == ["'self'"], path
        assert "'unsafe-inline'" not in answer.headers["content-security-policy"]
        assert "'unsafe-eval'" not in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "same-origin"
    assert browser.get("/signin").headers["cache-control"] == "no-store"


def map_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', page, re.S)
    assert found
    loaded: dict[str, Any] = json.loads(found.group(1))
    return loaded


async def test_a_tiles_url_adds_a_tile_layer_and_its_origin_to_the_policy(
    web_stack: WebStack,
) -> None:
    tiles = "https://{s}.tiles.example.org/{z}/{x}/{y}.png"
    settings = webapp_settings(
        web_stack, tiles_url=tiles, tiles_attribution="© Example contributors"
    )
    async with app_client(create_app(settings, configure_logs=False)) as client:
        answer = await client.get("/track/unknown-id")
        assert csp(answer)["img-src"] == ["'self'", "data:", "https://*.tiles.example.org"]
        assert answer.status_code == 404
        # The map's data on a page with a map: the tiles and their attribution.
        data = await _schedule_page_data(client)
        assert data["tiles"] == {"url": tiles, "attribution": "© Example contributors"}
    async with app_client(create_app(webapp_settings(web_stack), configure_logs=False)) as client:
        data = await _schedule_page_data(client)
        assert data["tiles"] is None  # no tile layer: the map draws on its own background
        assert len(data["area"]["bases"]) == 6
        assert data["area"]["radiusMeters"] == 10 * 1609.344


async def _schedule_page_data(client: httpx.AsyncClient) -> dict[str, Any]:
    page = await client.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    form = {"csrf_token": token.group(1), "account": "contoso", "user": "tess", "next": "/"}
    signed = await client.post("/signin", data=form)
    assert signed.status_code == 303
    schedule = await client.get("/deliveries/new")
    assert schedule.status_code == 200
    return map_data(schedule.text)
