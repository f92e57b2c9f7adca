"""The HTTP client's parts that need no server: Retry-After, backoff, idempotency, the breaker's
state machine, joining URLs to the base URL and building requests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from multidict import CIMultiDict

from dronecommon.httpclient import (
    CircuitBreaker,
    CircuitState,
    ResilientClient,
    RetryPolicy,
    create_http_client,
    parse_retry_after,
)
from dronecommon.httpclient.breaker import Admission
from dronecommon.httpclient.retry import is_idempotent
from dronecommon.httpclient.urls import UrlJoiner
from dronecommon.settings import HttpClientSettings
from dronetesting.clocks import FakeClock


def test_retry_after_parsing() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 -0000", now=now) == 30.0
    for unusable in (None, "", "-1", "1.5", "soon"):
        assert parse_retry_after(unusable, now=now) is None


def test_backoff_is_exponential_with_full_jitter() -> None:
    policy = RetryPolicy(retries=5, backoff_base=0.1, backoff_max=1.0, retry_after_max=10.0)
    assert [policy.delay(n, rng=lambda: 1.0) for n in range(5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert policy.delay(3, rng=lambda: 0.0) == 0.0
    assert policy.delay(2, rng=lambda: 0.5) == pytest.approx(0.2)
    assert policy.delay(0, retry_after=3.0) == 3.0
    assert policy.delay(0, retry_after=60.0) == 10.0


def test_idempotency_rules() -> None:
    def headers(**values: str) -> CIMultiDict[str]:
        return CIMultiDict(values)

    for method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS"):
        assert is_idempotent(method, headers())
    for method in ("POST", "PATCH"):
        assert not is_idempotent(method, headers())
    assert is_idempotent("POST", headers(**{"idempotency-key": "k"}))
    assert is_idempotent("POST", headers(), override=True)
    assert not is_idempotent("GET", headers(), override=False)


def state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state  # read through a call: each read may move OPEN to HALF_OPEN


def test_breaker_state_machine() -> None:
    clock = FakeClock(100.0)
    breaker = CircuitBreaker("t", failure_threshold=3, reset_timeout=10.0, clock=clock)

    for _ in range(2):
        breaker.record_failure(breaker.acquire())
    breaker.record_success(breaker.acquire())  # a success resets the count
    for _ in range(2):
        breaker.record_failure(breaker.acquire())
    assert state(breaker) is CircuitState.CLOSED
    breaker.record_failure(breaker.acquire())
    assert state(breaker) is CircuitState.OPEN
    assert breaker.acquire() is Admission.REFUSED
    assert breaker.retry_after == 10.0

    clock.now += 10.0
    assert state(breaker) is CircuitState.HALF_OPEN
    probe = breaker.acquire()
    assert probe is Admission.PROBE
    assert breaker.acquire() is Admission.REFUSED  # one probe at a time
    breaker.release(probe)  # e.g. cancelled: the slot is handed back
    probe = breaker.acquire()
    assert probe is Admission.PROBE
    breaker.record_failure(probe)
    assert state(breaker) is CircuitState.OPEN

    clock.now += 10.0
    probe = breaker.acquire()
    breaker.record_success(probe)
    assert state(breaker) is CircuitState.CLOSED
    assert breaker.acquire() is Admission.ADMITTED


def test_late_failures_do_not_extend_an_open_breaker() -> None:
    clock = FakeClock(100.0)
    breaker = CircuitBreaker("t", failure_threshold=1, reset_timeout=10.0, clock=clock)
    early = breaker.acquire()
    breaker.record_failure(breaker.acquire())
    clock.now += 5.0
    breaker.record_failure(early)  # admitted before it opened: ignored
    assert breaker.retry_after == 5.0


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:8003", "https://package.svc/base/", "http://h/a"]
)
@pytest.mark.parametrize(
    "relative",
    [
        "",
        "/",
        "/api/packages/4f9a3c1e-2b7d-4e8a-9c0f-1a2b3c4d5e6f",
        "api/deliveries/public/x",
        "/api/summary?ownerId=o-1&year=2025&month=3",
        "/api/with space/ü?q=a b",  # not plain: parsed and encoded by yarl
        "/api/../up/./here",
        "/api/x%2Fy?z=%41",
        "/a//b//",
    ],
)
def test_joined_urls_equal_what_httpx_builds(base: str, relative: str) -> None:
    joined = UrlJoiner(base).join(relative)

    with httpx.Client(base_url=base) as reference:
        expected = reference.build_request("GET", relative).url
    assert joined.scheme == expected.scheme
    assert joined.raw_authority == expected.netloc.decode()
    assert joined.raw_path == expected.raw_path.decode().partition("?")[0]
    # The same parameters; a space may travel as "+" and "%41" as "A" (equivalent encodings).
    assert list(joined.query.items()) == list(httpx.QueryParams(expected.query).multi_items())
    if "?" not in relative or (relative.isascii() and " " not in relative and "%" not in relative):
        assert str(joined) == str(expected)


def test_a_leading_double_slash_is_a_path_not_a_host() -> None:
    # httpx.AsyncClient would read "//other/x" as a network-path reference to host "other".
    joiner = UrlJoiner("http://h:1/api")
    assert str(joiner.join("//other/x")) == "http://h:1/api/other/x"


def test_a_base_url_must_be_absolute_http() -> None:
    for bad in ("/relative", "ftp://h/", "h:1"):
        with pytest.raises(ValueError, match="base_url"):
            UrlJoiner(bad)


# -- building requests -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "DELETE", "HEAD", "OPTIONS", "PUT", "POST", "PATCH"])
@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (None, None),
        ({"id": "p-1", "weight": 2.5, "tags": ["a", "é"], "nested": {"n": None}}, None),
        ([1, 2, 3], {"Idempotency-Key": "k-1"}),
        ("just a string", [("X-A", "1"), ("X-A", "2")]),
        (0, {"Content-Type": "application/merge-patch+json"}),
        ({"a": 1}, {"host": "gateway.internal"}),
        (None, {"Authorization": "Bearer t"}),
    ],
)
def test_the_request_is_the_request_httpx_builds(method: str, body: Any, headers: Any) -> None:
    # Host and Content-Length are aiohttp's to set when the request goes out; the rest (the
    # URL, the body encoded as httpx encodes JSON, Content-Type, the caller's headers) is ours.
    client = ResilientClient(HttpClientSettings(), name="x", base_url="http://package:8080/base")
    built = client.build_request(method, "/api/packages/p-1", json=body, headers=headers)
    url = "http://package:8080/base/api/packages/p-1"
    expected = httpx.Request(method, url, json=body, headers=headers)
    assert built.method == expected.method
    assert str(built.url) == str(expected.url)
    assert (built.body or b"") == expected.content
    automatic = ("host", "content-length")
    assert sorted(
        (k.lower(), v) for k, v in built.headers.items() if k.lower() not in automatic
    ) == (sorted((k, v) for k, v in expected.headers.multi_items() if k not in automatic))
    if headers and "host" in headers:
        assert built.headers["Host"] == "gateway.internal"


def test_default_headers_are_sent_and_the_callers_win() -> None:
    client = ResilientClient(
        HttpClientSettings(),
        name="x",
        base_url="http://package:8080",
        headers={"X-Caller": "workflow", "X-Tenant": "a"},
    )
    built = client.build_request("GET", "/x", headers={"x-tenant": "b"})
    assert built.headers.getall("X-Tenant") == ["b"]
    assert built.headers["X-Caller"] == "workflow"


def test_nan_is_refused_as_httpx_refuses_it() -> None:
    client = create_http_client(HttpClientSettings(), base_url="http://package:8080", name="x")
    with pytest.raises(ValueError, match="JSON compliant"):
        client.build_request("PUT", "/x", json={"weight": float("nan")})
