"""Notify-me requests: who to tell when a delivery moves (e-mail, SMS, webhook).

One model for everyone who handles them: ingestion (the request's ``notify``), the workflow (which
registers it with the delivery), the delivery service (which keeps them with the delivery) and the
notifier (which tells them). The rules:

- ``emailAddress``: an address as RFC 5321 and RFC 6531 allow (internationalised ones such as
  ``josé@example.com`` included), checked by ``email-validator`` without any DNS lookup and kept
  in its normalised form (Unicode NFC, domain lower-cased; a ``Name <address>`` form keeps the
  address).
- ``sms``: E.164, ``+`` then 7..15 digits; spaces, dots, hyphens and parentheses are dropped.
- ``webhookUrl``: an absolute ``https`` URL of at most 2048 characters, without user name,
  password or fragment. Plain ``http`` is accepted only for a loopback host (``localhost``,
  ``127.0.0.0/8``, ``[::1]``), for development; the notifier refuses it anywhere else, and refuses
  targets that resolve to private, loopback, link-local, multicast or reserved addresses outside
  development (a URL cannot say where its host resolves, so that check happens when it is called).

At least one of the three is required.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, EmailStr, Field, field_validator, model_validator

from dronecommon.domain import ApiModel

MAX_WEBHOOK_URL = 2048

_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def e164(value: str) -> str:
    """``value`` as an E.164 number (separators dropped), or ``ValueError``."""
    number = _PHONE_SEPARATORS.sub("", value)
    if not _PHONE.match(number):
        raise ValueError("not a phone number in E.164 form (+ then 7 to 15 digits)")
    return number


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP literal (no name resolution)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def webhook_url(value: str) -> str:
    """``value`` if it is a webhook URL these rules accept (see the module), else ``ValueError``."""
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError when out of range or not a number
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError("must be an absolute https URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password")
    if parts.fragment:
        raise ValueError("must not have a fragment")
    if port == 0:
        raise ValueError("port 0 cannot be called")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in value):
        raise ValueError("must not contain spaces or control characters")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ValueError("must use https (plain http only to a loopback host, in development)")
    return value


PhoneNumber = Annotated[str, Field(max_length=32, examples=["+14255550123"])]
WebhookUrl = Annotated[
    str,
    Field(min_length=1, max_length=MAX_WEBHOOK_URL, examples=["https://example.com/hooks/drone"]),
    AfterValidator(webhook_url),
]


class NotifyMeRequest(ApiModel):
    """Who to tell when the delivery moves: an e-mail address, an SMS number, a webhook, or any
    of them together (see :mod:`dronecommon.notifyme` for the rules)."""

    email_address: EmailStr | None = Field(default=None, examples=["ann@example.com"])
    sms: PhoneNumber | None = None
    webhook_url: WebhookUrl | None = None

    @field_validator("sms")
    @classmethod
    def _sms(cls, value: str | None) -> str | None:
        return None if value is None else e164(value)

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if self.email_address is None and self.sms is None and self.webhook_url is None:
            raise ValueError("send emailAddress, sms, webhookUrl or any of them")
        return self


__all__ = [
    "MAX_WEBHOOK_URL",
    "NotifyMeRequest",
    "PhoneNumber",
    "WebhookUrl",
    "e164",
    "is_loopback_host",
    "webhook_url",
]
