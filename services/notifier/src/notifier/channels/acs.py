"""Azure Communication Services: e-mail (``azure-communication-email``) and SMS
(``azure-communication-sms``), keyless with the library's workload-identity credential.

**Email.** ``begin_send`` with ``operation_id`` = a UUIDv5 of the item id: the service treats a
repeated operation id as the same operation, so a send repeated after a crash is not queued
twice. The item is sent when the service accepted the message (``202``, status ``NotStarted`` or
``Running``); delivery to the mailbox is the service's job from there (its status can be polled
with the operation id kept as the item's reference).

**SMS.** ``SmsClient.send`` to one number with a delivery report requested and the item's message
id as the report tag. The SDK draws a fresh repeatability id for every call, so an SMS repeated
after a crash between the service's acceptance and the "sent" mark may arrive twice (the window
the README states).

Errors: ``4xx`` answers other than 408 and 429 fail the item; everything else is retried.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from azure.communication.email.aio import EmailClient
from azure.communication.sms.aio import SmsClient
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, HttpResponseError

from notifier import messages
from notifier.records import Item

from .base import PermanentSendError, TransientSendError

_RETRYABLE = frozenset({408, 429})


def _refusal(what: str, exc: AzureError) -> Exception:
    status = exc.status_code if isinstance(exc, HttpResponseError) else None
    text = f"{what}: {type(exc).__name__}: {exc.message if hasattr(exc, 'message') else exc}"
    if status is not None and 400 <= status < 500 and status not in _RETRYABLE:
        return PermanentSendError(text)
    return TransientSendError(text)


def _address(sender: str) -> str:
    """The address of ``Name <address>`` (ACS takes the sender's address alone)."""
    return sender.rsplit("<", 1)[-1].rstrip(">").strip() if "<" in sender else sender.strip()


class AcsEmail:
    def __init__(
        self,
        endpoint: str,
        credential: AsyncTokenCredential,
        *,
        sender: str,
        base_url: str,
        **client_options: Any,
    ) -> None:
        self.client = EmailClient(endpoint, credential, **client_options)
        self.sender = _address(sender)
        self.base_url = base_url

    async def send(self, item: Item, now: dt.datetime) -> str:
        text = messages.words(item.facts, self.base_url)
        message = {
            "senderAddress": self.sender,
            "recipients": {"to": [{"address": item.to}]},
            "content": {
                "subject": text.subject,
                "plainText": messages.plain(text),
                "html": messages.markup(text),
            },
        }
        try:
            poller = await self.client.begin_send(
                message, operation_id=item.operation_id, polling=False
            )
            result: Any = await poller.result()
        except AzureError as exc:
            raise _refusal("ACS Email", exc) from exc
        status = (result or {}).get("status", "")
        if str(status).lower() in ("failed", "canceled"):
            raise TransientSendError(f"ACS Email operation {item.operation_id}: {status}")
        return f"acs-email:{(result or {}).get('id', item.operation_id)}"

    async def check(self) -> None:
        return None  # no cheap, side-effect-free call exists; sends report failures

    async def close(self) -> None:
        await self.client.close()


class AcsSms:
    def __init__(
        self,
        endpoint: str,
        credential: AsyncTokenCredential,
        *,
        sender: str,
        base_url: str,
        **client_options: Any,
    ) -> None:
        self.client = SmsClient(endpoint, credential, **client_options)
        self.sender = sender
        self.base_url = base_url

    async def send(self, item: Item, now: dt.datetime) -> str:
        try:
            results = await self.client.send(
                from_=self.sender,
                to=[item.to],
                message=messages.sms(item, self.base_url),
                enable_delivery_report=True,
                tag=item.message_id,
            )
        except AzureError as exc:
            raise _refusal("ACS SMS", exc) from exc
        (result,) = results
        if result.successful:
            return f"acs-sms:{result.message_id}"
        text = f"ACS SMS refused {item.to}: {result.http_status_code} {result.error_message}"
        status = result.http_status_code or 0
        if 400 <= status < 500 and status not in _RETRYABLE:
            raise PermanentSendError(text)
        raise TransientSendError(text)

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        await self.client.close()
