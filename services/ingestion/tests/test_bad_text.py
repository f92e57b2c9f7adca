"""Bad text anywhere in a body is a 400 or is ignored, never a 500.

JSON may spell a lone UTF-16 surrogate (``"\\ud800"``): Python's parser accepts it, but the text
cannot be encoded as UTF-8, so everything that encodes the request (the Idempotency-Key
fingerprint, the queue message) must never meet it. The body is fuzzed with lone surrogates in
every key and every value, nested ones included, with and without an Idempotency-Key.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dronetesting.problems import assert_problem
from dronetesting.samples import SAMPLE_REQUEST
from ingestion.service import IdempotencyKey
from ingestion.settings import IngestionSettings, LimitSettings

from .conftest import make_settings, queued

URL = "/api/deliveryrequests"
LONE = ("\ud800", "\udfff", "a\udc80b")

# The sample with unknown fields too, nested ones included: they are ignored, but they are part of
# the body an Idempotency-Key fingerprints.
BODY: dict[str, Any] = {
    **SAMPLE_REQUEST,
    "extra": "text",
    "more": {"nested": ["x", {"deep": "y"}]},
}


def _variants(value: Any) -> Iterator[Any]:
    """``value`` with one lone surrogate put in one place: every key and every string."""
    if isinstance(value, str):
        for lone in LONE:
            yield lone
            yield value + lone
    elif isinstance(value, dict):
        for key, item in value.items():
            for lone in LONE[:1]:
                yield {(k + lone if k == key else k): v for k, v in value.items()}
            for changed in _variants(item):
                yield {**value, key: changed}
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for changed in _variants(item):
                yield [*value[:index], changed, *value[index + 1 :]]
        yield [*value, LONE[0]]


def _raw(body: Any) -> bytes:
    # json.dumps escapes a lone surrogate as \ud800 (ASCII), which is what a client sends.
    return json.dumps(body).encode()


CASES = list(_variants(BODY))


@pytest.fixture
def settings(redis_url: str) -> IngestionSettings:
    # Hundreds of requests from one account: its limits are tested in test_limits.py.
    unlimited = LimitSettings(requests_per_minute=1e6, burst=100_000, max_in_progress=100_000)
    return make_settings(redis_url, limits=unlimited)


def test_the_fuzz_reaches_every_key_and_value() -> None:
    assert len(CASES) > 60
    assert all(b"\\ud" in _raw(case) for case in CASES)


@pytest.mark.parametrize("with_key", [False, True], ids=["no-key", "idempotency-key"])
async def test_lone_surrogates_anywhere_in_a_delivery_request_are_never_a_500(
    client: httpx.AsyncClient, redis_url: str, with_key: bool
) -> None:
    accepted = 0
    for case in CASES:
        headers = {"Content-Type": "application/json"}
        if with_key:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        response = await client.post(URL, content=_raw(case), headers=headers)
        assert response.status_code in (202, 400), (case, response.status_code, response.text)
        if response.status_code == 400:
            assert_problem(response, 400)
        else:
            accepted += 1
            # The answer and the message are valid UTF-8 JSON.
            response.json()
    messages = await queued(redis_url)
    assert len(messages) == accepted
    assert accepted > 0  # unknown fields are ignored, whatever their text


async def test_a_lone_surrogate_in_an_unknown_field_is_ignored_and_replays_with_its_key(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    raw = _raw({**SAMPLE_REQUEST, "note": "\ud800"})
    headers = {"Content-Type": "application/json", "Idempotency-Key": "surrogate-1"}
    first = await client.post(URL, content=raw, headers=headers)
    again = await client.post(URL, content=raw, headers=headers)
    assert first.status_code == again.status_code == 202, first.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = await client.post(
        URL, content=_raw({**SAMPLE_REQUEST, "note": "\udfff"}), headers=headers
    )
    assert_problem(other, 422)
    assert len(await queued(redis_url)) == 1


@pytest.mark.parametrize("field", ["pickupLocation", "dropOffLocation", "deadline"])
async def test_a_lone_surrogate_in_a_reschedule_is_a_400(
    client: httpx.AsyncClient, redis_url: str, field: str
) -> None:
    raw = _raw({field: "somewhere \ud800"})
    response = await client.patch(
        f"{URL}/{uuid.uuid4()}", content=raw, headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 400)
    assert [error["field"] for error in body["errors"]] == [field]
    assert await queued(redis_url) == []


def test_the_fingerprint_of_valid_text_is_what_it_always_was() -> None:
    # Records written before lone surrogates were allowed for keep matching their retries.
    body = {"ownerId": "zoë", "b": [1, "東京"]}
    canonical = '{"b":[1,"東京"],"ownerId":"zoë"}'.encode()
    assert IdempotencyKey("c", "k", body).fingerprint == hashlib.sha256(canonical).hexdigest()
    assert IdempotencyKey("c", "k", {"x": "\ud800"}).fingerprint != (
        IdempotencyKey("c", "k", {"x": "\udfff"}).fingerprint
    )
