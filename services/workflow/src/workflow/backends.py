"""Every call the workflow makes to the package, drone scheduler and delivery services.

One :class:`~dronecommon.httpclient.ResilientClient` per service (timeouts, retries with backoff
and jitter, a circuit breaker, trace propagation, bearer tokens). Transient failures raise
:class:`~dronecommon.httpclient.TransientHTTPError` from the client; this module turns the
answers it returns into outcomes, :class:`PermanentError` (a 4xx that will not change),
:class:`CredentialsRefused` (401/403: the workflow's identity, not the request, is at fault) or
:class:`TransientError` (an answer no contract allows, which a fixed deployment may cure).

Every call is idempotent: PUTs create-or-replay, DELETEs are idempotent, and the PATCHes set
absolute values (so they are marked retryable).
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dronecommon.area import place_name
from dronecommon.domain import ACCOUNT_HEADER, Location
from dronecommon.httpclient import ResilientClient, Response
from dronecommon.problems import PROBLEM_TYPE_BASE

from .errors import CredentialsRefused, PermanentError, TransientError
from .schemas import DeliveryMessage, DroneAssignment

logger = logging.getLogger("workflow.backends")

_PERMANENT_EXCLUDED = frozenset({408, 409, 429})
_CREDENTIALS_REFUSED = frozenset({401, 403})


class Outcome(enum.Enum):
    """What a state-changing call found."""

    DONE = "done"  # created, replayed or updated
    MISSING = "missing"  # 404: the target does not exist (yet)
    FINAL = "final"  # 409: the target is terminal/released, the change cannot apply
    REFUSED = "refused"  # 422: the change itself cannot apply (the delivery goes on as it was)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a service refused a change: its problem type's name and its detail."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class PlanResult:
    outcome: Outcome
    assignment: DroneAssignment | None = None
    refusal: Refusal | None = None


def _location(location: Location) -> dict[str, float]:
    return {
        "latitude": location.latitude,
        "longitude": location.longitude,
        "altitude": location.altitude,
    }


def _detail(response: Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        parts = [str(body.get("detail") or body.get("title") or "")]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts.append(json.dumps(errors[:5], separators=(",", ":")))
        return " ".join(p for p in parts if p)[:500]
    return str(body)[:300]


def _refusal(response: Response) -> Refusal:
    """A problem+json 422 as a refusal: ``urn:dronedelivery:problem:trip-too-long`` →
    ``trip-too-long``, with its detail."""
    try:
        body = response.json()
    except ValueError:
        body = None
    kind = str(body.get("type") or "") if isinstance(body, dict) else ""
    reason = kind.removeprefix(PROBLEM_TYPE_BASE)[:128] or "unprocessable"
    return Refusal(reason, _detail(response) or "Refused.")


def _credentials(scope: str | None) -> str:
    if scope:
        return f"the token requested for scope {scope}"
    return "no token (no outbound scope is configured for it)"


def _unexpected(
    service: str, what: str, response: Response, *, scope: str | None = None
) -> Exception:
    """A 4xx that will not change is permanent, except 401/403 (the caller's credentials, not the
    request); any other surprise may be cured by a deploy."""
    status = response.status_code
    text = f"{service} answered {status} to {what}: {_detail(response)}"
    if status in _CREDENTIALS_REFUSED:
        return CredentialsRefused(
            service,
            status,
            f"{text} (at {response.method} {response.url}; "
            f"the workflow sent {_credentials(scope)})",
        )
    if 400 <= status < 500 and status not in _PERMANENT_EXCLUDED:
        return PermanentError(f"{service.capitalize()}Rejected", text)
    return TransientError(text)


def _parse_assignment(service: str, response: Response) -> DroneAssignment:
    try:
        return DroneAssignment.model_validate(response.json())
    except (ValueError, ValidationError) as exc:
        raise TransientError(f"{service} answered {response.status_code} with {exc}") from exc


class Backends:
    """The three downstream services, one resilient client each."""

    def __init__(
        self,
        *,
        package: ResilientClient,
        dronescheduler: ResilientClient,
        delivery: ResilientClient,
        outbound_scopes: Mapping[str, str] | None = None,
    ) -> None:
        self.package = package
        self.dronescheduler = dronescheduler
        self.delivery = delivery
        # The scope each service's token is requested for (named in a 401/403's alarm).
        self.outbound_scopes = dict(outbound_scopes or {})

    def _unexpected(self, service: str, what: str, response: Response) -> Exception:
        return _unexpected(service, what, response, scope=self.outbound_scopes.get(service))

    async def aclose(self) -> None:
        for client in (self.package, self.dronescheduler, self.delivery):
            await client.aclose()

    # -- package -------------------------------------------------------------------------------

    async def upsert_package(self, request: DeliveryMessage) -> None:
        info = request.package_info
        body = {
            "size": info.size.value,
            "weight": info.weight,
            "tag": info.tag,
            "ownerId": request.owner_id,
        }
        # Packages are kept per account: the request's account, not the workflow's identity.
        headers = {ACCOUNT_HEADER: request.owner_of.account_id}
        response = await self.package.put(
            f"api/packages/{info.package_id}", json=body, headers=headers
        )
        if response.status_code not in (200, 201, 204):
            raise self._unexpected("package", f"PUT package {info.package_id}", response)

    # -- drone scheduler -----------------------------------------------------------------------

    async def assign_drone(
        self, request: DeliveryMessage, pickup: Location, dropoff: Location
    ) -> PlanResult:
        """201/200 the assignment; 409 → FINAL (released: cancelled or compensated)."""
        info = request.package_info
        body = {
            "deliveryId": request.delivery_id,
            "ownerId": request.owner_id,
            "pickup": _location(pickup),
            "dropoff": _location(dropoff),
            "packageDetail": {
                "id": info.package_id,
                "size": info.size.value,
                "weight": info.weight,
            },
            "expedited": request.expedited,
        }
        response = await self.dronescheduler.put(
            f"api/dronedeliveries/{request.delivery_id}", json=body
        )
        if response.status_code in (200, 201):
            return PlanResult(Outcome.DONE, _parse_assignment("dronescheduler", response))
        if response.status_code == 409:
            return PlanResult(Outcome.FINAL)
        raise self._unexpected("dronescheduler", f"PUT assignment {request.delivery_id}", response)

    async def replan_drone(
        self, delivery_id: str, pickup: Location | None, dropoff: Location | None
    ) -> PlanResult:
        """200 the new ETAs; 404 → MISSING (not assigned yet); 409 → FINAL (released); 422 →
        REFUSED (the drone cannot fly the new route: too long, or a place outside the area)."""
        body: dict[str, Any] = {}
        if pickup is not None:
            body["pickup"] = _location(pickup)
        if dropoff is not None:
            body["dropoff"] = _location(dropoff)
        response = await self.dronescheduler.patch(
            f"api/dronedeliveries/{delivery_id}", json=body, idempotent=True
        )
        if response.status_code == 200:
            return PlanResult(Outcome.DONE, _parse_assignment("dronescheduler", response))
        if response.status_code == 404:
            return PlanResult(Outcome.MISSING)
        if response.status_code == 409:
            return PlanResult(Outcome.FINAL)
        if response.status_code == 422:
            return PlanResult(Outcome.REFUSED, refusal=_refusal(response))
        raise self._unexpected("dronescheduler", f"PATCH assignment {delivery_id}", response)

    async def release_drone(self, delivery_id: str) -> None:
        response = await self.dronescheduler.delete(f"api/dronedeliveries/{delivery_id}")
        if response.status_code not in (200, 204, 404):
            raise self._unexpected("dronescheduler", f"DELETE assignment {delivery_id}", response)

    # -- delivery ------------------------------------------------------------------------------

    async def create_delivery(
        self,
        request: DeliveryMessage,
        pickup: Location,
        dropoff: Location,
        assignment: DroneAssignment | None,
    ) -> None:
        """201 created, 204 replayed; 409 (exists with other content) is checked to be ours.

        Without an assignment the delivery is recorded with no drone (``droneId`` null, no ETAs):
        how a request cancelled before it was scheduled is kept.
        """
        delivery_id = request.delivery_id
        body: dict[str, Any] = {
            "id": delivery_id,
            "owner": {
                "userId": request.owner_of.user_id,
                "accountId": request.owner_of.account_id,
            },
            "pickup": _location(pickup),
            "dropoff": _location(dropoff),
            # The places as the customer named them, for the owner's view.
            "pickupPlace": place_name(request.pickup_location),
            "dropoffPlace": place_name(request.drop_off_location),
            "deadline": request.deadline,
            "expedited": request.expedited,
            "confirmationRequired": request.confirmation_required.value,
            "droneId": None,
        }
        if request.notify is not None:
            # In the creating PUT, so the delivery's first event already names who to tell.
            body["notifyMeRequests"] = [
                request.notify.model_dump(mode="json", by_alias=True, exclude_none=True)
            ]
        if assignment is not None:
            body["droneId"] = assignment.drone_id
            body["pickupETA"] = assignment.pickup_eta
            body["deliveryETA"] = assignment.delivery_eta
        response = await self.delivery.put(f"api/deliveries/{delivery_id}", json=body)
        if response.status_code in (200, 201, 204):
            return
        if response.status_code == 409:
            # Created by an earlier delivery of this message and changed since (rescheduled,
            # cancelled): the delivery id is the request's own, so it is this delivery.
            existing = await self.delivery.get(f"api/deliveries/{delivery_id}")
            if existing.status_code == 200:
                drone = _field(existing, "droneId")
                ours = assignment.drone_id if assignment is not None else None
                if drone not in (None, ours):
                    logger.warning(
                        "delivery %s exists with drone %s, not %s",
                        delivery_id,
                        drone,
                        ours,
                    )
                return
            raise TransientError(
                f"delivery answered 409 to PUT {delivery_id} but {existing.status_code} to GET"
            )
        raise self._unexpected("delivery", f"PUT delivery {delivery_id}", response)

    async def delivery_exists(self, delivery_id: str) -> bool:
        """Whether the delivery record exists (200) or not (404)."""
        response = await self.delivery.get(f"api/deliveries/{delivery_id}")
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._unexpected("delivery", f"GET delivery {delivery_id}", response)

    async def patch_delivery(self, delivery_id: str, changes: dict[str, Any]) -> Outcome:
        """204 → DONE; 404 → MISSING (not created yet); 409 → FINAL (completed/cancelled)."""
        response = await self.delivery.patch(
            f"api/deliveries/{delivery_id}", json=changes, idempotent=True
        )
        return self._delivery_outcome(response, f"PATCH delivery {delivery_id}")

    async def refuse_change(self, delivery_id: str, refusal: dict[str, Any]) -> Outcome:
        """Record a refused change on the delivery: 204 → DONE; 404 → MISSING; 409 → FINAL
        (completed or cancelled meanwhile: nothing left to tell)."""
        response = await self.delivery.post(
            f"api/deliveries/{delivery_id}/refusals", json=refusal, idempotent=True
        )
        return self._delivery_outcome(response, f"POST refusal {delivery_id}")

    async def cancel_delivery(self, delivery_id: str) -> Outcome:
        """204 → DONE; 404 → MISSING (not created yet); 409 → FINAL (completed)."""
        response = await self.delivery.delete(f"api/deliveries/{delivery_id}")
        return self._delivery_outcome(response, f"DELETE delivery {delivery_id}")

    def _delivery_outcome(self, response: Response, what: str) -> Outcome:
        """A delivery change's answer: 200/204 DONE, 404 MISSING, 409 FINAL."""
        if response.status_code in (200, 204):
            return Outcome.DONE
        if response.status_code == 404:
            return Outcome.MISSING
        if response.status_code == 409:
            return Outcome.FINAL
        raise self._unexpected("delivery", what, response)


def _field(response: Response, name: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None
