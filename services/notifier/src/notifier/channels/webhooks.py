"""Webhooks per the Standard Webhooks specification.

Each attempt ``POST`` s the JSON body (:func:`notifier.messages.webhook_body`) with:

- ``webhook-id``: the item's message id, the same on every attempt (receivers deduplicate on it);
- ``webhook-timestamp``: the attempt's time, Unix seconds;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with the
  account's secret (``whsec_...``, :class:`~notifier.secrets.WebhookSecrets`), made by the
  ``standardwebhooks`` package.

A ``2xx`` answer is sent; anything else (another status, a redirect — never followed —, a time-out,
a connection failure) is retried with the outbox's backoff. A target the rules forbid
(:mod:`notifier.channels.targets`) fails the item at once.

The HTTP client is an aiohttp session of this channel's own rather than the library's
``create_http_client``: the library client offers no way to choose the addresses a connection
goes to, and the checked resolver is what pins each connection to the addresses that passed the
check. The session is shaped like the library's (no cookies, no proxies or ``.netrc`` from the
environment, no redirects, bounded connections and time-outs); retries are the outbox's.
"""

from __future__ import annotations

import datetime as dt

import aiohttp
from standardwebhooks.webhooks import Webhook

from notifier import messages
from notifier.records import Item
from notifier.secrets import WebhookSecrets

from .base import PermanentSendError, TransientSendError
from .targets import CheckedResolver, TargetRefusedError, check_url

USER_AGENT = "dronedelivery-notifier/1 (+Standard Webhooks)"
MAX_ANSWER = 64 * 1024


def signed_headers(secret: str, message_id: str, now: dt.datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    timestamp = dt.datetime.fromtimestamp(int(now.timestamp()), dt.UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
    }


class Webhooks:
    def __init__(
        self,
        secrets: WebhookSecrets,
        *,
        base_url: str,
        development: bool,
        private_allowed: bool,
        timeout: float,
        max_connections: int,
    ) -> None:
        self.secrets = secrets
        self.base_url = base_url
        self.development = development
        self.private_allowed = private_allowed
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made inside the running loop, on first use
            connector = aiohttp.TCPConnector(
                resolver=CheckedResolver(private_allowed=self.private_allowed),
                limit=self.max_connections,
                use_dns_cache=False,  # every connection resolves (and checks) afresh
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                timeout=self.timeout,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def send(self, item: Item, now: dt.datetime) -> str:
        try:
            check_url(item.to, development=self.development, private_allowed=self.private_allowed)
        except TargetRefusedError as exc:
            raise PermanentSendError(f"webhook target refused: {exc}") from exc
        if not item.account:
            raise PermanentSendError("the delivery names no account whose secret signs webhooks")
        secret = await self.secrets.get_or_create(item.account)
        body = messages.webhook_body(item, self.base_url)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signed_headers(secret.secret, f"msg_{item.message_id}", now, body),
        }
        try:
            async with self._client().post(
                item.to, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.content.read(MAX_ANSWER)
                status = response.status
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, TargetRefusedError):
                raise PermanentSendError(f"webhook target refused: {exc.os_error}") from exc
            raise TransientSendError(f"webhook {item.to}: {exc!r}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientSendError(f"webhook {item.to}: {exc!r}") from exc
        if 200 <= status < 300:
            return f"webhook:{status}"
        raise TransientSendError(f"webhook {item.to} answered {status}")

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
