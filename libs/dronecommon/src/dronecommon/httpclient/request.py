"""What a call sends: the method, the joined URL, the headers and the body, built once per call.

A body is ``json=`` (encoded as compact UTF-8 JSON, ``NaN`` and infinities refused, with
``Content-Type: application/json`` unless the caller set one) or ``content=`` (bytes, text sent as
UTF-8, or an async iterable of bytes, sent chunked and never replayed). ``Host`` and
``Content-Length`` are set by aiohttp when the request goes out.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from json import dumps as json_dumps
from typing import Any

from multidict import CIMultiDict
from yarl import URL

RequestHeaders = Mapping[str, str] | Iterable[tuple[str, str]]
RequestContent = bytes | str | AsyncIterable[bytes]
QueryValue = str | int | float
QueryParams = Mapping[str, QueryValue | Sequence[QueryValue]] | Sequence[tuple[str, QueryValue]]


@dataclass(slots=True)
class Request:
    """One call's request; each attempt sends it again with a fresh ``traceparent`` and token."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    body: bytes | AsyncIterable[bytes] | None = None

    @property
    def replayable(self) -> bool:
        """Whether the body can be sent again (bytes, not a one-shot stream)."""
        return self.body is None or isinstance(self.body, bytes)


def build_request(
    method: str,
    url: URL,
    *,
    defaults: CIMultiDict[str] | None,
    headers: RequestHeaders | None,
    params: QueryParams | None,
    content: RequestContent | None,
    json: Any,
) -> Request:
    """The request for ``url`` (already joined to the base): query, headers and body added."""
    if params:
        url = url.extend_query(params)
    merged: CIMultiDict[str] = CIMultiDict(defaults) if defaults else CIMultiDict()
    if headers:
        merged.update(headers)  # the caller's value replaces a default of the same name
    body: bytes | AsyncIterable[bytes] | None = None
    if json is not None:
        if content is not None:
            raise TypeError("pass json= or content=, not both")
        body = json_dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        if "Content-Type" not in merged:
            merged["Content-Type"] = "application/json"
    elif isinstance(content, str):
        body = content.encode()
    elif content is not None:
        body = content
    return Request(method.upper(), url, merged, body)
