"""Joining request paths to the client's base URL without parsing the base on every call.

httpx parses every URL it is handed in pure Python; on the 2-core benchmark machine that is the
largest single cost of a call (tens of microseconds, more than the client's own logic). A client
calls one base URL with paths made of ids (``/api/packages/{id}``), so :class:`UrlJoiner` parses
the base once and, when the relative reference is *plain* — unreserved characters and ``/`` in the
path (so no dot segments and nothing to percent-encode) and a simple query — builds the joined
URL's parsed form directly: httpx's parser would have produced exactly that. Anything else is joined
as text and parsed by httpx as usual.

The direct form uses one httpx internal (``httpx._urlparse.ParseResult``, the parsed form behind
``httpx.URL``). The joiner checks when it is made that the direct form equals what httpx's own
parser returns for a set of samples, and parses everything otherwise: an httpx upgrade can make the
client slower, never wrong.
"""

from __future__ import annotations

import re

import httpx

try:
    from httpx._urlparse import ParseResult
except ImportError:  # pragma: no cover - a future httpx without it: always parse
    ParseResult = None  # type: ignore[assignment, misc]

_PLAIN = re.compile(
    r"(?P<path>[A-Za-z0-9_~/-]{0,2048})(?:\?(?P<query>[A-Za-z0-9_~.=&,:+-]{0,2048}))?"
)
_SAMPLES = (
    "",
    "api/packages/4f9a3c1e-2b7d-4e8a-9c0f-1a2b3c4d5e6f",
    "api/deliveries/public/x_y~z",
    "api/summary?ownerId=o-1&year=2025&month=3",
    "a//b/?",
)


class UrlJoiner:
    """Joins relative references to one base URL (which ends with ``/``)."""

    def __init__(self, base: httpx.URL) -> None:
        if not base.raw_path.endswith(b"/"):
            base = base.copy_with(raw_path=base.raw_path + b"/")
        if not base._uri_reference.path:  # "http://host:port": spell out its "/" path
            base = base.copy_with(path="/")
        self.base = base
        self._text = str(base)
        self._direct = ParseResult is not None and self._verify()

    def join(self, url: str) -> httpx.URL | str:
        """``url`` resolved against the base the way ``httpx.AsyncClient(base_url=...)`` does."""
        if url.startswith(("http://", "https://")):
            return url
        relative = url.lstrip("/")
        if self._direct:
            plain = _PLAIN.fullmatch(relative)
            if plain is not None:
                return self._build(plain["path"], plain["query"])
        return self._text + relative

    def _build(self, path: str, query: str | None) -> httpx.URL:
        base = self.base._uri_reference
        url = httpx.URL.__new__(httpx.URL)
        url._uri_reference = ParseResult(
            base.scheme, base.userinfo, base.host, base.port, base.path + path, query, None
        )
        return url

    def _verify(self) -> bool:
        try:
            for sample in _SAMPLES:
                plain = _PLAIN.fullmatch(sample)
                assert plain is not None
                direct = self._build(plain["path"], plain["query"])
                if direct._uri_reference != httpx.URL(self._text + sample)._uri_reference:
                    return False
        except Exception:  # anything unexpected in httpx's internals: parse instead
            return False
        return True
