"""The one check of an error answer: RFC 9457 problem+json as every service writes it."""

from __future__ import annotations

from typing import Any

import httpx

from dronecommon.problems import PROBLEM_TYPE_BASE

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_KEYS = frozenset({"type", "title", "status", "detail", "traceId"})
VALIDATION_ERROR = PROBLEM_TYPE_BASE + "validation-error"


def assert_problem(
    response: httpx.Response,
    status: int,
    *,
    type: str | None = None,
    fields: set[str] | None = None,
) -> dict[str, Any]:
    """``response`` is a problem with ``status``; returns its body.

    Every problem has a non-empty ``type``, ``title`` and ``detail`` and the request's 32-digit
    ``traceId``. ``type`` is the full URN or its last part (``"validation-error"``); ``fields``
    are exactly the fields a validation problem names, each with a message.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE, response.headers
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    for member in ("type", "title", "detail"):
        assert isinstance(body[member], str), body
        assert body[member], body
    assert len(body["traceId"]) == 32, body
    if type is not None:
        assert body["type"] == (type if ":" in type else PROBLEM_TYPE_BASE + type), body
    if fields is not None:
        assert {error["field"] for error in body["errors"]} == fields, body["errors"]
        assert all(error["message"] for error in body["errors"]), body["errors"]
    return body


def field_errors(response: httpx.Response) -> set[str]:
    """The fields a 400 validation problem names (each with a message)."""
    body = assert_problem(response, 400, type=VALIDATION_ERROR)
    assert body["title"] == "Invalid request", body
    assert body["errors"], body
    assert all(error["message"] for error in body["errors"]), body["errors"]
    return {error["field"] for error in body["errors"]}
