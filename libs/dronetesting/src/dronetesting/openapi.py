"""Committed OpenAPI documents: each service keeps ``openapi.json`` beside its ``pyproject.toml``.

``make openapi`` rewrites them from the code; a test per service calls
:func:`assert_openapi_current` so any drift between code and document fails the suite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI


def render_openapi(app: FastAPI) -> str:
    """The app's OpenAPI document as committed: sorted keys, two-space indent, final newline."""
    document: dict[str, Any] = app.openapi()
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def assert_openapi_current(app: FastAPI, committed: Path) -> None:
    rendered = render_openapi(app)
    assert committed.exists(), f"{committed} is missing: run `make openapi`"
    assert committed.read_text() == rendered, (
        f"{committed} differs from the code: run `make openapi` and review the change"
    )
