"""The schedule form: from the browser's fields to ingestion's request, and its refusals back.

The web app checks only what it needs to build the request (the weight is a number); every rule
is ingestion's, and its 400 problem names each field (``errors[].field``), which the form shows
next to the matching input. A problem without fields (the service area, a rate limit, a refusal)
shows above the form.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

SIZES = ("Small", "Medium", "Large")
CONFIRMATIONS = ("None", "FingerPrint", "Picture", "Voice")

# The request's field paths (problem+json ``errors[].field``) → the form's inputs.
FIELD_OF = {
    "pickupLocation": "pickup",
    "dropOffLocation": "dropoff",
    "dropoffLocation": "dropoff",
    "deadline": "deadline",
    "expedited": "expedited",
    "confirmationRequired": "confirmation",
    "packageInfo.size": "size",
    "packageInfo.weight": "weight",
    "packageInfo.tag": "tag",
    "notify": "email",
    "notify.emailAddress": "email",
    "notify.sms": "sms",
    "notify.webhookUrl": "webhook",
}


@dataclass
class ScheduleForm:
    pickup: str = ""
    dropoff: str = ""
    size: str = "Small"
    weight: str = "1"
    tag: str = ""
    deadline: str = ""
    expedited: bool = False
    confirmation: str = "None"
    email: str = ""
    sms: str = ""
    webhook: str = ""
    # One key per form shown: submitting the same form twice schedules once.
    request_key: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    errors: dict[str, list[str]] = field(default_factory=dict)
    problem: str | None = None

    @classmethod
    def parse(cls, form: dict[str, str]) -> ScheduleForm:
        key = form.get("request_key", "").strip()
        return cls(
            pickup=form.get("pickup", "").strip(),
            dropoff=form.get("dropoff", "").strip(),
            size=form.get("size", "Small"),
            weight=form.get("weight", "").strip(),
            tag=form.get("tag", "").strip(),
            deadline=form.get("deadline", "").strip(),
            expedited=form.get("expedited") in {"on", "true", "1"},
            confirmation=form.get("confirmation", "None"),
            email=form.get("email", "").strip(),
            sms=form.get("sms", "").strip(),
            webhook=form.get("webhook", "").strip(),
            request_key=key if 8 <= len(key) <= 64 else secrets.token_urlsafe(18),
        )

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def request(self, owner_id: str) -> dict[str, Any] | None:
        """Ingestion's request body, or None when a field cannot even be sent (see ``errors``)."""
        try:
            weight = float(self.weight)
        except ValueError:
            self.add_error("weight", "Enter the weight in pounds, a number such as 2.5.")
            return None
        package: dict[str, Any] = {"size": self.size, "weight": weight}
        if self.tag:
            package["tag"] = self.tag
        body: dict[str, Any] = {
            "ownerId": owner_id,
            "pickupLocation": self.pickup,
            "dropOffLocation": self.dropoff,
            "deadline": self.deadline,
            "expedited": self.expedited,
            "confirmationRequired": self.confirmation,
            "packageInfo": package,
        }
        notify = {
            name: value
            for name, value in (
                ("emailAddress", self.email),
                ("sms", self.sms),
                ("webhookUrl", self.webhook),
            )
            if value
        }
        if notify:
            body["notify"] = notify
        return body

    def refused(self, status: int, problem: Any) -> None:
        """Show ingestion's refusal: per field where it names fields, above the form otherwise."""
        body = problem if isinstance(problem, dict) else {}
        named = False
        for error in body.get("errors") or []:
            if not isinstance(error, dict):
                continue
            where = str(error.get("field", ""))
            message = str(error.get("message", "is not valid"))
            name = FIELD_OF.get(where) or FIELD_OF.get(where.split(".", 1)[0])
            if name is None:
                continue
            self.add_error(name, message)
            named = True
        if not named:
            self.problem = str(body.get("detail") or body.get("title") or f"Refused ({status}).")
