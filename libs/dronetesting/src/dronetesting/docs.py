"""Checks that an app's API docs pages work without a network beyond the app itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx

# What each asset must be served as, by its file extension.
ASSET_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_ABSOLUTE_URL = re.compile(r"(?i)\b(?:https?:)?//[a-z0-9.-]+")


class _AssetLinks(HTMLParser):
    """Every URL a page makes the browser load: ``<script src>``, ``<link href>``, ``<img src>``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def asset_urls(html: str) -> list[str]:
    parser = _AssetLinks()
    parser.feed(html)
    parser.close()
    return parser.urls


async def assert_docs_page_offline(client: httpx.AsyncClient, page: str) -> list[str]:
    """``page`` answers HTML whose every asset is a local path the app serves with the right
    content type, and which names no other host at all. Returns the asset paths."""
    response = await client.get(page)
    assert response.status_code == 200, (page, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not _ABSOLUTE_URL.search(html), (page, _ABSOLUTE_URL.findall(html))
    urls = asset_urls(html)
    assert any(url.endswith(".js") for url in urls), (page, urls)
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme, (page, url)
        assert not parts.netloc, (page, url)
        assert parts.path.startswith("/"), (page, url)
        asset = await client.get(url)
        assert asset.status_code == 200, (page, url, asset.status_code)
        suffix = parts.path[parts.path.rfind(".") :]
        expected = ASSET_TYPES.get(suffix)
        assert expected is not None, (page, url, "unexpected kind of asset")
        assert asset.headers["content-type"].split(";")[0] == expected, (page, url, asset.headers)
        assert len(asset.content) > 0, (page, url)
    return urls
