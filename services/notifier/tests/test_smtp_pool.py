"""The SMTP channel's connections against a real Mailpit: reused, capped, replaced when stale."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from dronetesting.servers import MailpitServer
from notifier.channels.smtp import SmtpEmail
from notifier.records import Channel, Item
from notifier.settings import EmailSettings, SmtpSettings

from .conftest import BASE_URL, Inbox, claimed_item

NOW = dt.datetime(2030, 5, 8, 20, 0, tzinfo=dt.UTC)


def item(to: str = "ann@example.com") -> Item:
    """A claimed e-mail of a delivery of its own (so a Message-ID of its own)."""
    return claimed_item(Channel.EMAIL, to, str(uuid.uuid4()))


@pytest.fixture
async def channel(mailpit: MailpitServer) -> AsyncIterator[Callable[..., SmtpEmail]]:
    made: list[SmtpEmail] = []

    def make(**smtp: Any) -> SmtpEmail:
        settings = EmailSettings(smtp=SmtpSettings(port=mailpit.smtp_port, **smtp))
        made.append(SmtpEmail(settings, base_url=BASE_URL, timeout=5, check_timeout=2))
        return made[-1]

    yield make
    for email in made:
        await email.close()


async def test_messages_in_turn_share_one_connection(
    channel: Callable[..., SmtpEmail], inbox: Inbox
) -> None:
    email = channel()
    answers = [await email.send(item(f"user{n}@example.com"), NOW) for n in range(10)]
    assert email.opened == 1
    assert all(answer.startswith("2") for answer in answers)  # the server's 250
    messages = await inbox.wait_for(10)
    assert sorted(m["To"][0]["Address"] for m in messages) == sorted(
        f"user{n}@example.com" for n in range(10)
    )


async def test_concurrent_sends_open_what_they_need_and_the_pool_keeps_its_size(
    channel: Callable[..., SmtpEmail], inbox: Inbox
) -> None:
    email = channel(pool_size=2)
    await asyncio.gather(*(email.send(item(), NOW) for _ in range(6)))
    assert 2 <= email.opened <= 6
    assert len(email._idle) <= 2
    opened = email.opened
    await asyncio.gather(*(email.send(item(), NOW) for _ in range(2)))
    assert email.opened == opened  # the two kept were used
    assert len(await inbox.wait_for(8)) == 8


async def test_without_a_pool_every_message_has_its_connection(
    channel: Callable[..., SmtpEmail], inbox: Inbox
) -> None:
    email = channel(pool_size=0)
    for _ in range(3):
        await email.send(item(), NOW)
    assert email.opened == 3
    assert email._idle == []
    assert len(await inbox.wait_for(3)) == 3


async def test_a_connection_carries_at_most_its_message_cap(
    channel: Callable[..., SmtpEmail], inbox: Inbox
) -> None:
    email = channel(messages_per_connection=3)
    for _ in range(7):
        await email.send(item(), NOW)
    assert email.opened == 3  # 3 + 3 + 1
    assert len(await inbox.wait_for(7)) == 7


async def test_an_idle_connection_is_not_reused_past_its_idle_time(
    channel: Callable[..., SmtpEmail], inbox: Inbox
) -> None:
    email = channel(idle_seconds=0.2)
    await email.send(item(), NOW)
    await email.send(item(), NOW)
    assert email.opened == 1
    await asyncio.sleep(0.3)
    await email.send(item(), NOW)
    assert email.opened == 2
    assert len(await inbox.wait_for(3)) == 3


async def test_a_server_restarted_under_a_pooled_connection_costs_no_failed_send(
    channel: Callable[..., SmtpEmail], inbox: Inbox, mailpit: MailpitServer
) -> None:
    email = channel()
    await email.send(item("before@example.com"), NOW)
    # No await between the restart and the send: the pooled connection still looks open.
    mailpit.stop()
    mailpit.start()
    await email.send(item("after@example.com"), NOW)
    assert email.opened == 2
    messages = await inbox.wait_for(2)
    assert sorted(m["To"][0]["Address"] for m in messages) == [
        "after@example.com",
        "before@example.com",
    ]


async def test_close_ends_the_pooled_sessions(channel: Callable[..., SmtpEmail]) -> None:
    email = channel()
    await email.send(item(), NOW)
    (pooled,) = email._idle
    assert pooled.client.is_connected
    await email.close()
    assert email._idle == []
    assert not pooled.client.is_connected
