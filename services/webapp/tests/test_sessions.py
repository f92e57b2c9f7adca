"""Sessions, sign-in and sign-out, CSRF: the browser holds a signed cookie, Redis the session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

import pytest
from redis.asyncio import Redis

from .conftest import Browser, WebStack

COOKIE = "dronedelivery_session"


@pytest.fixture
async def redis(web_stack: WebStack) -> AsyncIterator[Redis]:
    client = Redis.from_url(web_stack.redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


def set_cookie(response_headers: list[str]) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    for header in response_headers:
        cookie.load(header)
    return cookie


def use_cookie(browser: Browser, value: str) -> None:
    """The browser holds this session cookie and no other."""
    browser.client.cookies.clear()
    browser.client.cookies.set(COOKIE, value, domain="127.0.0.1", path="/")


def session_id(browser: Browser) -> str:
    """The session id the browser's (signed) cookie names."""
    value = browser.client.cookies.get(COOKIE)
    assert value
    return value.rsplit(".", 1)[0]


async def test_the_cookie_is_signed_httponly_and_names_a_session_in_redis(
    browser: Browser, redis: Redis
) -> None:
    page = browser.get("/signin")
    assert page.status_code == 200
    cookie = set_cookie(page.headers.get_list("set-cookie"))[COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert not cookie["secure"]  # plain http on loopback; https behind the gateway
    key = f"webapp:session:{session_id(browser)}"
    assert await redis.exists(key)
    assert 0 < await redis.ttl(key) <= 8 * 3600
    # A forged or altered cookie is ignored: a new session starts.
    forged = session_id(browser) + ".forged"
    use_cookie(browser, forged)
    again = browser.get("/signin")
    fresh = set_cookie(again.headers.get_list("set-cookie"))[COOKIE].value
    assert fresh
    assert fresh != forged
    assert not fresh.startswith(key.rsplit(":", 1)[1])


async def test_signing_in_renews_the_session_and_signing_out_ends_it(
    browser: Browser, another_browser: Browser, redis: Redis
) -> None:
    browser.get("/signin")
    before = session_id(browser)
    old_cookie = browser.client.cookies.get(COOKIE)
    assert old_cookie is not None
    browser.sign_in("sam")
    after = session_id(browser)
    assert after != before  # no session fixation
    assert not await redis.exists(f"webapp:session:{before}")
    stored = await redis.get(f"webapp:session:{after}")
    assert stored is not None
    assert '"user":"sam"' in stored
    assert '"account":"contoso"' in stored

    # The cookie from before sign-in opens nothing.
    use_cookie(another_browser, old_cookie)
    assert another_browser.get("/deliveries").status_code == 303

    page = browser.get("/deliveries")
    assert page.status_code == 200
    assert "sam" in page.text
    assert "Signed in as sam (contoso)." in page.text

    signout = browser.post("/signout", {"csrf_token": browser.csrf("/deliveries")})
    assert signout.status_code == 303
    cleared = set_cookie(signout.headers.get_list("set-cookie"))[COOKIE]
    assert cleared.value == ""
    assert cleared["max-age"] == "0"
    assert not await redis.exists(f"webapp:session:{after}")
    # Signed out: the pages send the browser to sign in again, the scripts' routes answer 401.
    gone = browser.get("/deliveries")
    assert gone.status_code == 303
    assert gone.headers["location"] == "/signin?next=%2Fdeliveries"
    script = browser.get("/deliveries.json", headers={"Accept": "application/json"})
    assert script.status_code == 401
    assert script.headers["content-type"] == "application/problem+json"
    assert script.json()["type"].endswith("sign-in-required")


def test_sign_in_refuses_bad_names_and_keeps_what_was_typed(browser: Browser) -> None:
    form = {"csrf_token": browser.csrf(), "account": "contoso", "user": "no spaces!", "next": "/"}
    answer = browser.post("/signin", form)
    assert answer.status_code == 400
    assert "Use 1 to 64 letters, digits" in answer.text
    assert 'value="no spaces!"' in answer.text
    assert browser.get("/deliveries").status_code == 303  # not signed in


def test_sign_in_goes_back_only_to_this_site(browser: Browser) -> None:
    for target, expected in (
        ("/deliveries/new", "/deliveries/new"),
        ("https://evil.example/", "/deliveries"),
        ("//evil.example/", "/deliveries"),
        ("/\\evil.example", "/deliveries"),
    ):
        form = {"csrf_token": browser.csrf(), "account": "contoso", "user": "tom", "next": target}
        answer = browser.post("/signin", form)
        assert answer.status_code == 303
        assert answer.headers["location"] == expected


def test_forms_without_the_sessions_csrf_token_are_refused(
    browser: Browser, another_browser: Browser
) -> None:
    # Sign-in itself needs the token of this browser's session.
    refused = browser.post("/signin", {"account": "contoso", "user": "eve", "next": "/"})
    assert refused.status_code == 403
    assert "did not come from this site" in refused.text
    browser.sign_in("carol")
    another_browser.sign_in("mallory")
    others = another_browser.csrf("/deliveries/new")
    for token in (None, "", "x" * 43, others):
        form = {"pickup": "47.6,-122.3", "dropoff": "47.61,-122.31", "weight": "1"}
        if token is not None:
            form["csrf_token"] = token
        answer = browser.post("/deliveries/new", form)
        assert answer.status_code == 403, token
    # Another type than a form is refused too (a cross-site JSON post).
    json_post = browser.client.post(
        "/deliveries/new", json={"csrf_token": browser.csrf("/deliveries/new")}
    )
    assert json_post.status_code == 403
    # Sign-out needs the token as well: without it the session stays.
    assert browser.post("/signout", {}).status_code == 403
    assert browser.get("/deliveries").status_code == 200
