"""Azure Communication Services Email and SMS, tested at the SDK boundary.

ACS cannot run here: the real SDK clients build and send their requests through an azure-core
transport that stands in for the service (named as such: :class:`AcsServiceStandIn`), answering
as the REST API documents and recording what the SDK sent.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest._http_response_impl_async import RestAsyncHttpClientTransportResponse
from redis.asyncio import Redis

from notifier.channels import PermanentSendError, TransientSendError
from notifier.channels.acs import AcsEmail, AcsSms
from notifier.outbox import Outbox
from notifier.records import OPERATION_NAMESPACE, Channel
from notifier.runtime import build_channels
from notifier.secrets import WebhookSecrets
from notifier.settings import EmailSettings, NotifierSettings, SmsSettings, WebhookSettings

from .conftest import claimed_item

ENDPOINT = "https://acs-test.communication.azure.com"
NOW = dt.datetime(2030, 5, 8, 20, 0, tzinfo=dt.UTC)


class StaticCredential:
    """A workload-identity credential stand-in: a fixed bearer token."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("workload-token", int(NOW.timestamp()) + 10**9)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


class _Raw:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.reason = "Accepted" if status == 202 else "Error"
        self._headers = headers
        self._body = body

    def getheaders(self) -> list[tuple[str, str]]:
        return list(self._headers.items())

    def read(self) -> bytes:
        return self._body


class _Response(RestAsyncHttpClientTransportResponse):
    """A whole, already-read response that can also be iterated (as the SDK does)."""

    async def iter_bytes(self, **kwargs: Any) -> AsyncIterator[bytes]:  # type: ignore[override]
        yield await self.read()  # type: ignore[no-untyped-call]

    async def iter_raw(self, **kwargs: Any) -> AsyncIterator[bytes]:  # type: ignore[override]
        yield await self.read()  # type: ignore[no-untyped-call]


class AcsServiceStandIn(AsyncHttpTransport):  # type: ignore[type-arg]
    """Answers each request with the next canned (status, body); records the requests."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.requests: list[Any] = []

    async def send(self, request: Any, **kwargs: Any) -> Any:
        self.requests.append(request)
        status, body = self.answers.pop(0)
        headers = {"Content-Type": "application/json"}
        if status == 202:
            headers["Operation-Location"] = f"{ENDPOINT}/emails/operations/op-1"
        raw = _Raw(status, headers, json.dumps(body).encode())
        response = _Response(request=request, internal_response=raw)  # type: ignore[no-untyped-call]
        await response.read()  # type: ignore[no-untyped-call]
        return response

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> AcsServiceStandIn:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


def body_of(request: Any) -> Any:
    """The JSON body (the e-mail SDK sends ``azure.core.rest`` requests, the SMS SDK the older
    transport ones)."""
    content = getattr(request, "content", None)
    return json.loads(content if content is not None else request.body)


async def test_email_is_sent_with_a_deterministic_operation_id() -> None:
    service = AcsServiceStandIn(
        (202, {"id": "op-1", "status": "Running"}), (202, {"id": "op-1", "status": "Running"})
    )
    credential = StaticCredential()
    channel = AcsEmail(
        ENDPOINT,
        credential,
        sender="Fabrikam <DoNotReply@mail.example>",
        base_url="https://drones.example",
        transport=service,
    )
    item = claimed_item(Channel.EMAIL, "ann@example.com")
    assert await channel.send(item, NOW) == "acs-email:op-1"
    assert await channel.send(item, NOW) == "acs-email:op-1"  # a repeat after a crash
    first, second = service.requests
    assert first.method == "POST"
    assert "/emails:send" in first.url
    operation = first.headers["Operation-Id"]
    assert operation == str(uuid.uuid5(OPERATION_NAMESPACE, item.id)) == item.operation_id
    assert second.headers["Operation-Id"] == operation
    assert first.headers["Authorization"] == "Bearer workload-token"
    assert credential.scopes == [("https://communication.azure.com//.default",)]
    message = body_of(first)
    assert message["senderAddress"] == "DoNotReply@mail.example"
    assert message["recipients"] == {"to": [{"address": "ann@example.com"}]}
    assert message["content"]["subject"] == "Delivery d-42: a drone is on its way"
    assert "https://drones.example/track/d-42" in message["content"]["plainText"]
    assert "2030-05-08T20:25:00.000Z" in message["content"]["html"]
    await channel.close()


async def test_email_refused_by_the_service_fails_for_good() -> None:
    refusal = {"error": {"code": "InvalidRecipient", "message": "bad address"}}
    channel = AcsEmail(
        ENDPOINT,
        StaticCredential(),
        sender="DoNotReply@mail.example",
        base_url="https://drones.example",
        transport=AcsServiceStandIn((400, refusal)),
    )
    with pytest.raises(PermanentSendError, match="ACS Email"):
        await channel.send(claimed_item(Channel.EMAIL, "nobody@example.com"), NOW)
    await channel.close()


async def test_sms_is_sent_with_a_delivery_report_tag() -> None:
    accepted = {
        "value": [
            {
                "to": "+14255550123",
                "messageId": "sms-1",
                "httpStatusCode": 202,
                "successful": True,
            }
        ]
    }
    refused = {
        "value": [
            {
                "to": "+14255550123",
                "httpStatusCode": 400,
                "successful": False,
                "errorMessage": "Invalid number",
            }
        ]
    }
    throttled = {**refused, "value": [{**refused["value"][0], "httpStatusCode": 429}]}
    service = AcsServiceStandIn((202, accepted), (202, refused), (202, throttled))
    channel = AcsSms(
        ENDPOINT,
        StaticCredential(),
        sender="+18005550100",
        base_url="https://drones.example",
        transport=service,
    )
    item = claimed_item(Channel.SMS, "+14255550123")
    assert await channel.send(item, NOW) == "acs-sms:sms-1"
    sent = body_of(service.requests[0])
    assert sent["from"] == "+18005550100"
    assert sent["smsRecipients"][0]["to"] == "+14255550123"
    assert sent["smsSendOptions"] == {"enableDeliveryReport": True, "tag": item.message_id}
    assert sent["message"].startswith("Fabrikam: Delivery d-42: a drone is on its way.")
    with pytest.raises(PermanentSendError, match="Invalid number"):
        await channel.send(item, NOW)
    with pytest.raises(TransientSendError):
        await channel.send(item, NOW)
    await channel.close()


async def test_acs_settings_choose_the_acs_channels(redis_url: str) -> None:
    settings = NotifierSettings(
        email=EmailSettings(transport="acs", acs_endpoint=ENDPOINT),
        sms=SmsSettings(transport="acs", acs_endpoint=ENDPOINT, sender="+18005550100"),
        webhooks=WebhookSettings(enabled=False),
    )
    redis = Redis.from_url(redis_url)
    try:
        channels = build_channels(
            settings,
            Outbox(redis),
            WebhookSecrets(redis),
            StaticCredential(),
        )
        assert isinstance(channels[Channel.EMAIL], AcsEmail)
        assert isinstance(channels[Channel.SMS], AcsSms)
        assert Channel.WEBHOOK not in channels
        for channel in channels.values():
            await channel.close()
    finally:
        await redis.aclose()
    with pytest.raises(ValueError, match="acs_endpoint"):
        NotifierSettings(email=EmailSettings(transport="acs"))
