"""Joining request paths to the client's base URL.

The rule is httpx's ``base_url`` rule: a relative reference is appended to the base URL's path
(``base_url="http://h/api"`` and ``"packages/1"`` or ``"/packages/1"`` give
``http://h/api/packages/1``), and an absolute ``http(s)://`` URL is used as it is. Unlike URL
resolution (RFC 3986), a leading ``//`` is part of the path, never a host: a path built from an id
cannot send the call elsewhere.

A client calls one base URL with paths made of ids (``/api/packages/{id}``), so when the relative
reference is *plain* — unreserved characters and ``/`` in the path (no dot segments, nothing to
percent-encode) and a simple query — the joined text is already a valid encoded URL and yarl is
told so (no requoting pass). Anything else is parsed and percent-encoded by yarl as usual.
"""

from __future__ import annotations

import re

from yarl import URL

_PLAIN = re.compile(r"[A-Za-z0-9_~/-]{0,2048}(?:\?[A-Za-z0-9_~.=&,:+-]{0,2048})?")


class UrlJoiner:
    """Joins references to one base URL (given with or without its trailing ``/``)."""

    __slots__ = ("_text", "base")

    def __init__(self, base: str | URL) -> None:
        url = URL(base) if isinstance(base, str) else base
        if not url.absolute or url.scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an absolute http(s) URL, not {str(base)!r}")
        text = str(url.with_query(None).with_fragment(None))
        if not text.endswith("/"):
            text += "/"
        self._text = text
        self.base = URL(text, encoded=True)

    def join(self, url: str | URL) -> URL:
        """``url`` resolved against the base the way ``httpx.AsyncClient(base_url=...)`` does."""
        if isinstance(url, URL):
            if url.absolute:
                return url
            url = str(url)
        if url.startswith(("http://", "https://")):
            return URL(url)
        relative = url.lstrip("/")
        if _PLAIN.fullmatch(relative) is not None:
            return URL(self._text + relative, encoded=True)
        return URL(self._text + relative)
