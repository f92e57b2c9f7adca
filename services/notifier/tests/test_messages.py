"""The e-mail as flattened for SMTP: headers built through the cached header registry."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy

from aiosmtplib.email import extract_recipients, extract_sender, flatten_message

from notifier import messages
from notifier.records import Channel, Facts, Item, Status

AT = dt.datetime(2030, 5, 8, 20, 0, tzinfo=dt.UTC)


def _item(to: str) -> Item:
    facts = Facts(type="Assigned", delivery_id="d-1", at=AT, drone_id="drone-1", delivery_eta=AT)
    return Item(
        id="d-1:assigned:x", delivery_id="d-1", event="Assigned", event_at=AT,
        channel=Channel.EMAIL, to=to, account="contoso", facts=facts, status=Status.PENDING,
        attempts=0, created_at=AT, due_at=AT, holder=None, sent_at=None, failed_at=None,
        last_error=None, ref=None,
    )  # fmt: skip


def test_each_header_class_is_built_once_and_the_message_reads_back_as_written() -> None:
    registry = messages.HEADERS
    assert messages.EMAIL_POLICY.header_factory is registry
    assert registry["Subject"] is registry["subject"]  # the standard one builds a new class
    assert registry["To"] is not registry["Subject"]
    mail = messages.email(
        _item("José Núñez <josé@example.com>"),
        sender="Fabrikam Drones <noreply@dronedelivery.example>",
        base_url="https://drones.example",
        message_id_domain="dronedelivery.example",
        now=AT,
    )
    assert extract_sender(mail) == "noreply@dronedelivery.example"
    assert extract_recipients(mail) == ["josé@example.com"]
    back = message_from_bytes(flatten_message(mail), policy=policy.default)
    assert back["To"].addresses[0].display_name == "José Núñez"
    assert back["From"].addresses[0].addr_spec == "noreply@dronedelivery.example"
    assert back["Subject"] == mail["Subject"]
    assert back["Date"].datetime == AT
    assert back["X-Delivery-Event"] == "Assigned"
    plain, markup = back.get_body(("plain",)), back.get_body(("html",))
    assert plain is not None
    assert markup is not None
    assert plain.get_content().startswith("A drone has been assigned to your delivery.")
    assert "https://drones.example/track/d-1" in markup.get_content()
