"""What a call returns: a small, fully read HTTP response.

The client reads every body whole (within ``max_response_body``) before it returns, so a
:class:`Response` holds bytes, never a connection: nothing to close, safe to keep.
"""

from __future__ import annotations

import codecs
from datetime import timedelta
from typing import Any

from multidict import CIMultiDictProxy
from orjson import loads as json_loads
from yarl import URL


class Response:
    """Status, headers and body of one HTTP response (names as in httpx and requests)."""

    __slots__ = (
        "content",
        "elapsed",
        "headers",
        "http_version",
        "method",
        "reason_phrase",
        "status_code",
        "url",
    )

    def __init__(
        self,
        *,
        status_code: int,
        headers: CIMultiDictProxy[str],
        content: bytes,
        method: str,
        url: URL,
        reason_phrase: str = "",
        http_version: str = "HTTP/1.1",
        elapsed: timedelta = timedelta(0),
    ) -> None:
        self.status_code = status_code
        self.headers = headers  # case-insensitive, repeated names kept
        self.content = content
        self.method = method
        self.url = url
        self.reason_phrase = reason_phrase
        self.http_version = http_version
        self.elapsed = elapsed  # from sending the request to the end of the body

    @property
    def text(self) -> str:
        """The body decoded with the charset of ``Content-Type`` (UTF-8 when none or unknown)."""
        return self.content.decode(self.encoding, errors="replace")

    @property
    def encoding(self) -> str:
        """The charset named by ``Content-Type``, or ``utf-8``."""
        content_type = self.headers.get("Content-Type", "")
        for parameter in content_type.split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset":
                charset = value.strip().strip('"')
                try:
                    return codecs.lookup(charset).name
                except LookupError:
                    break
        return "utf-8"

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not JSON)."""
        return json_loads(self.content)

    @property
    def is_success(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status_code < 300

    @property
    def is_error(self) -> bool:
        """A 4xx or 5xx status."""
        return self.status_code >= 400

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"
