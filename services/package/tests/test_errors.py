"""Each refusal of the package service is a named problem type."""

from __future__ import annotations

import httpx


async def test_an_unknown_package_is_package_not_found(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/api/packages/nope"),
        await client.patch("/api/packages/nope", json={"tag": "x"}),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"] == "urn:dronedelivery:problem:package-not-found"
        assert body["title"] == "Not Found"
        assert body["detail"] == "No package 'nope'."
