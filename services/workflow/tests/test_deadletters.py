"""``python -m workflow.deadletters``: list and replay dead letters."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import uuid

import pytest

from workflow.deadletters import main, parser, run

from .conftest import FakeBackends, Harness, delivery_body, message, wait_until


async def poison(workflow: Harness, fake: FakeBackends, count: int = 2) -> list[str]:
    fake.max_weight = 1  # no drone can carry the sample's 10
    ids = [str(uuid.uuid4()) for _ in range(count)]
    await workflow.send(*(message("delivery", delivery_body(i)) for i in ids))
    await workflow.send(message("delivery", b"\xff not json", message_id="garbage"))

    async def arrived() -> bool:
        return await workflow.dead_letter_count() == count + 1

    await wait_until(arrived, 10, "the dead letters")
    return ids


async def test_list_shows_what_failed_and_why(workflow: Harness, fake: FakeBackends) -> None:
    ids = await poison(workflow, fake)
    out = io.StringIO()
    assert await run(parser().parse_args(["list", "--json"]), workflow.dead_letters, out) == 0
    rows = json.loads(out.getvalue())
    assert len(rows) == 3
    by_delivery = {row["deliveryId"]: row for row in rows}
    assert set(by_delivery) == {*ids, None}
    first = by_delivery[ids[0]]
    assert set(first) == {
        "id",
        "messageId",
        "operation",
        "deliveryId",
        "reason",
        "description",
        "deliveryCount",
        "deadLetteredAt",
    }
    assert first["operation"] == "delivery"
    assert first["reason"] == "DroneschedulerRejected"
    assert first["deliveryCount"] == 1
    assert first["deadLetteredAt"].endswith("Z")
    assert by_delivery[None]["reason"] == "MalformedMessage"
    assert by_delivery[None]["messageId"] == "garbage"

    table = io.StringIO()
    assert await run(parser().parse_args(["list"]), workflow.dead_letters, table) == 0
    text = table.getvalue()
    assert f"delivery={ids[0]}" in text
    assert "DroneschedulerRejected: dronescheduler answered 422" in text
    assert text.endswith("3 dead letters\n")
    limited = io.StringIO()
    assert (
        await run(parser().parse_args(["list", "--limit", "1"]), workflow.dead_letters, limited)
        == 0
    )
    assert limited.getvalue().endswith("1 dead letter\n")


async def test_replay_chosen_ids_then_all(workflow: Harness, fake: FakeBackends) -> None:
    ids = await poison(workflow, fake)
    letters = {
        json.loads(d.body)["deliveryId"]: d
        for d in await workflow.dead_letters.list()
        if d.message_id != "garbage"
    }
    fake.max_weight = 100  # the cause is fixed

    out = io.StringIO()
    args = parser().parse_args(["replay", letters[ids[0]].id, "0-1"])
    assert await run(args, workflow.dead_letters, out) == 1  # one id was not found
    assert f"replayed {letters[ids[0]].id}" in out.getvalue()
    assert "not found: 0-1" in out.getvalue()

    async def scheduled() -> bool:
        return ids[0] in fake.deliveries

    await wait_until(scheduled, 10, "the replayed delivery")

    out = io.StringIO()
    assert await run(parser().parse_args(["replay", "--all"]), workflow.dead_letters, out) == 0
    assert out.getvalue().endswith("2 replayed\n")

    async def settled() -> bool:
        return ids[1] in fake.deliveries and await workflow.dead_letter_count() == 1

    await wait_until(settled, 10, "the second delivery and the garbage back")
    [garbage] = await workflow.dead_letters.list()
    assert garbage.message_id == "garbage"  # still malformed: dead-lettered again


def test_replay_needs_ids_or_all() -> None:
    with pytest.raises(SystemExit):
        main(["replay"])
    with pytest.raises(SystemExit):
        main(["replay", "--all", "1-1"])


async def test_the_command_runs_as_documented(workflow: Harness, fake: FakeBackends) -> None:
    await poison(workflow, fake, count=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKFLOW_")}
    env["WORKFLOW_REDIS__URL"] = workflow.redis_url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workflow.deadletters",
        "list",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    rows = json.loads(stdout)
    assert sorted(row["reason"] for row in rows) == ["DroneschedulerRejected", "MalformedMessage"]
