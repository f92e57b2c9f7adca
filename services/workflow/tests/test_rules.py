"""Small rules in isolation: message models, backoff, credential choice."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dronecommon.area import resolve_location
from workflow.consumer import Consumer
from workflow.runtime import needs_credential
from workflow.schemas import DeliveryMessage, DroneAssignment, RescheduleMessage
from workflow.settings import WorkflowSettings

from .conftest import delivery_body


def test_delivery_message_accepts_the_sample_and_resolves_places() -> None:
    message = DeliveryMessage.model_validate(delivery_body("d-1"))
    assert message.package_info.size.value == "Small"
    assert message.owner_of.account_id == message.owner_id  # no owner: a message from before
    pickup = resolve_location(message.pickup_location)
    assert pickup.latitude != resolve_location(message.drop_off_location).latitude
    alias = {**delivery_body("d-1"), "dropoffLocation": "x"}
    del alias["dropOffLocation"]
    assert DeliveryMessage.model_validate(alias).drop_off_location == "x"


@pytest.mark.parametrize(
    "change",
    [
        {"deliveryId": "a/b"},
        {"pickupLocation": "91,0"},
        {"pickupLocation": "   "},
        {"packageInfo": {"packageId": "p", "size": "Small", "weight": -1}},
        {"confirmationRequired": "Maybe"},
    ],
)
def test_delivery_message_refuses_what_no_service_could_use(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DeliveryMessage.model_validate({**delivery_body("d-1"), **change})


def test_reschedule_changes_are_what_was_sent() -> None:
    message = RescheduleMessage.model_validate(
        {"deliveryId": "d", "dropOffLocation": "there", "pickupTime": "2030-01-01T01:00:00+01:00"}
    )
    assert message.changes() == {
        "dropOffLocation": "there",
        "pickupTime": "2030-01-01T00:00:00+00:00",
    }
    assert RescheduleMessage.model_validate({"deliveryId": "d"}).changes() == {}


def test_assignment_etas_must_be_date_times() -> None:
    good = {"deliveryId": "d", "droneId": "x", "pickupETA": "2030-01-01T00:00:00Z"}
    parsed = DroneAssignment.model_validate({**good, "deliveryETA": "2030-01-01T01:00:00.5Z"})
    assert parsed.delivery_eta == "2030-01-01T01:00:00.5Z"
    with pytest.raises(ValidationError):
        DroneAssignment.model_validate({**good, "deliveryETA": "soon"})


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    settings = WorkflowSettings(abandon_backoff_base=1.0, abandon_backoff_max=30.0)
    consumer = Consumer(None, settings)  # type: ignore[arg-type]
    for _ in range(50):
        assert 0.5 <= consumer.backoff(1, None) <= 1.0
        assert 4.0 <= consumer.backoff(4, None) <= 8.0
        assert 15.0 <= consumer.backoff(20, None) <= 30.0
        assert consumer.backoff(1, 12.0) == 12.0
        assert consumer.backoff(1, 300.0) == 30.0


def test_credential_only_when_something_needs_it() -> None:
    assert not needs_credential(WorkflowSettings())
    assert needs_credential(WorkflowSettings.model_validate({"redis": {"use_entra_id": True}}))
    assert needs_credential(
        WorkflowSettings.model_validate(
            {"queue": {"transport": "servicebus", "servicebus_namespace": "ns"}}
        )
    )
    assert not needs_credential(
        WorkflowSettings.model_validate(
            {"queue": {"transport": "servicebus", "servicebus_connection_string": "x"}}
        )
    )
    assert needs_credential(
        WorkflowSettings.model_validate(
            {"auth": {"outbound_scopes": {"package": "api://x/.default"}}}
        )
    )
    assert not needs_credential(
        WorkflowSettings.model_validate(
            {
                "auth": {
                    "outbound_scopes": {"package": "api://x/.default"},
                    "dev_signing_key_file": "key.pem",
                }
            }
        )
    )


def test_production_needs_a_token_for_every_call_not_inbound_auth() -> None:
    # The workflow's own routes are health only (public); in production every call it makes
    # must carry a token, so an outbound scope per called service is what is required.
    scopes = {name: f"api://{name}/.default" for name in ("package", "dronescheduler", "delivery")}
    with pytest.raises(ValueError, match="WORKFLOW_AUTH__OUTBOUND_SCOPES__PACKAGE"):
        WorkflowSettings.model_validate({"environment": "production"})
    with pytest.raises(ValueError, match="WORKFLOW_AUTH__OUTBOUND_SCOPES__DELIVERY"):
        WorkflowSettings.model_validate(
            {"environment": "production", "auth": {"outbound_scopes": {"package": "api://p"}}}
        )
    with pytest.raises(ValueError, match="development issuer"):
        WorkflowSettings.model_validate(
            {
                "environment": "production",
                "auth": {"outbound_scopes": scopes, "dev_signing_key_file": "k.pem"},
            }
        )
    with pytest.raises(ValueError, match="WORKFLOW_AUTH__ENABLED is false"):
        WorkflowSettings.model_validate(
            {"environment": "production", "auth": {"outbound_scopes": scopes, "enabled": False}}
        )
    settings = WorkflowSettings.model_validate(
        {"environment": "production", "auth": {"outbound_scopes": scopes}}
    )
    assert settings.auth.issuer is None  # no inbound token to check: no issuer needed
