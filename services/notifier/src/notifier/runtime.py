"""Everything the notifier holds while it runs, built and closed in one place.

:func:`running` is the body of the app's lifespan: it opens the workload credential when a client
needs one (Redis with Entra ID, outbound tokens, Azure Communication Services), builds the Redis
clients, the outbox, the channels, the delivery-service client, the events reader (the intake)
and the dispatcher (the senders), registers readiness and starts both loops. On the way out
(SIGTERM) the reader stops after the batch in hand (enqueued and acknowledged), then the
dispatcher lets its sends finish or hands them back, then every client closes
(``AsyncExitStack``, in reverse order).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import TypedDict

from azure.core.credentials_async import AsyncTokenCredential

from dronecommon import ServiceApp, redis_check
from dronecommon.auth.clients import create_redis_client
from dronecommon.auth.credentials import create_credential, credential_for, outbound_token_provider
from dronecommon.events import EventReader
from dronecommon.httpclient import create_http_client
from dronecommon.streams import default_consumer_name

from .channels import Sender
from .channels.acs import AcsEmail, AcsSms
from .channels.sms_sink import SmsSink
from .channels.smtp import SmtpEmail
from .channels.webhooks import Webhooks
from .intake import Directory, Intake
from .outbox import Outbox
from .records import Channel
from .secrets import WebhookSecrets
from .sender import Dispatcher
from .service import Notifications
from .settings import NotifierSettings

Clock = Callable[[], dt.datetime]


class State(TypedDict):
    """The lifespan state: what the routes receive (see ``api.py``)."""

    notifications: Notifications


def build_channels(
    settings: NotifierSettings,
    outbox: Outbox,
    secrets: WebhookSecrets,
    credential: AsyncTokenCredential | None,
) -> dict[Channel, Sender]:
    """The channels in use (a channel that is ``off`` is absent)."""
    base_url = settings.public_base_url
    channels: dict[Channel, Sender] = {}
    email = settings.email
    if email.transport == "smtp":
        channels[Channel.EMAIL] = SmtpEmail(
            email,
            base_url=base_url,
            timeout=settings.outbox.send_timeout,
            check_timeout=settings.channel_check_timeout,
            concurrency=settings.outbox.concurrency,
        )
    elif email.transport == "acs":
        if email.acs_endpoint is None or credential is None:
            raise RuntimeError("ACS Email needs an endpoint and a credential")
        channels[Channel.EMAIL] = AcsEmail(
            email.acs_endpoint, credential, sender=email.sender, base_url=base_url
        )
    sms = settings.sms
    if sms.transport == "sink":
        channels[Channel.SMS] = SmsSink(
            outbox, base_url=base_url, keep=sms.sink_max, file=sms.sink_file
        )
    elif sms.transport == "acs":
        if sms.acs_endpoint is None or sms.sender is None or credential is None:
            raise RuntimeError("ACS SMS needs an endpoint, a sender and a credential")
        channels[Channel.SMS] = AcsSms(
            sms.acs_endpoint, credential, sender=sms.sender, base_url=base_url
        )
    if settings.webhooks.enabled:
        channels[Channel.WEBHOOK] = Webhooks(
            secrets,
            base_url=base_url,
            development=settings.development,
            private_allowed=settings.private_targets_allowed,
            timeout=min(settings.webhooks.timeout, settings.outbox.send_timeout),
            max_connections=settings.webhooks.max_connections,
        )
    return channels


async def _stop_reader(reader: EventReader, task: asyncio.Task[None]) -> None:
    reader.stop()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, timeout=10)


@contextlib.asynccontextmanager
async def running(
    app: ServiceApp, settings: NotifierSettings, clock: Clock
) -> AsyncIterator[State]:
    async with contextlib.AsyncExitStack() as stack:
        credential = await stack.enter_async_context(
            credential_for(redis=settings.redis, outbound=settings.auth)
        )
        if credential is None and "acs" in (settings.email.transport, settings.sms.transport):
            credential = create_credential()
            stack.push_async_callback(credential.close)
        redis = create_redis_client(settings.redis, credential)
        stack.push_async_callback(redis.aclose)
        # A blocking XREADGROUP waits up to a second: its socket timeout must outlast it.
        events_redis = create_redis_client(
            settings.redis, credential, socket_timeout=max(5.0, settings.redis.socket_timeout)
        )
        stack.push_async_callback(events_redis.aclose)

        outbox = Outbox(
            redis, prefix=settings.key_prefix, retention_seconds=settings.outbox.retention_seconds
        )
        secrets = WebhookSecrets(redis, prefix=settings.key_prefix)
        channels = build_channels(settings, outbox, secrets, credential)
        for channel in channels.values():
            stack.push_async_callback(channel.close)

        tokens = outbound_token_provider(
            settings.auth, credential, caller="notifier", target="delivery"
        )
        if tokens is not None:
            stack.push_async_callback(tokens.close)
        directory = Directory(
            create_http_client(
                settings.http,
                base_url=settings.delivery_url,
                name="delivery",
                token_provider=tokens.token if tokens is not None else None,
            )
        )
        stack.push_async_callback(directory.aclose)

        dispatcher = Dispatcher(outbox, channels, settings.outbox, clock=clock)
        sending = asyncio.create_task(dispatcher.run(), name="notifier-senders")
        stack.push_async_callback(dispatcher.stop, sending)

        intake = Intake(
            outbox,
            directory,
            events=settings.events,
            channels=list(channels),
            max_age=settings.events_max_age,
            clock=clock,
            on_enqueued=dispatcher.wake,
        )
        reader = EventReader(
            events_redis,
            settings.events_group,
            default_consumer_name("notifier"),
            prefix=settings.delivery_key_prefix,
            batch_size=settings.events_batch,
            claim_idle=settings.events_claim_idle,
            start_id="$" if settings.events_start_at_latest else "0",
        )
        reading = asyncio.create_task(reader.run(intake.handle), name="notifier-intake")
        stack.push_async_callback(_stop_reader, reader, reading)

        checks = app.readiness
        checks.add("redis", redis_check(redis))
        checks.add("events", reader.check_ready)
        for name, channel in channels.items():
            checks.add(name.value, channel.check, timeout=settings.channel_check_timeout + 0.5)
        checks.add("senders", dispatcher.check)
        yield {"notifications": Notifications(outbox, secrets, settings)}
