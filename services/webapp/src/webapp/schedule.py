"""The forms that ask a service for something: schedule a delivery, change its places, tell
someone about it; from the browser's fields to the service's request, and its refusals back.

Every rule is the service's (ingestion's; the delivery service's for a notify-me request), and
its 400 problem names each field (``errors[].field``), which the form shows next to the matching
input, all of them at once. A problem without fields (a rate limit, a refusal) shows above the
form. The web app reads only the weight itself, the one field typed as text that the request
carries as a number: "2.5" (or "2,5") goes as 2.5, and anything else goes as typed, so that
ingestion refuses it together with whatever else is wrong, and the form words that refusal its
own way.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any, TypedDict

SIZES = ("Small", "Medium", "Large")
CONFIRMATIONS = ("None", "FingerPrint", "Picture", "Voice")

# The requests' field paths (problem+json ``errors[].field``) → the forms' inputs.
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
    # A notify-me request on its own (the delivery service's POST .../notifymerequests).
    "emailAddress": "email",
    "sms": "sms",
    "webhookUrl": "webhook",
}

WEIGHT_ERROR = "Enter the weight in pounds, a number such as 2.5."


def weight_of(text: str) -> float | None:
    """The weight typed, as a number: a decimal point or a decimal comma; None when it is not a
    finite number."""
    if "," in text and "." not in text:
        text = text.replace(",", ".", 1)
    try:
        weight = float(text)
    except ValueError:
        return None
    return weight if math.isfinite(weight) else None


@dataclass
class Form:
    """A form's errors as a service's refusal gave them: per field, or one problem above it."""

    errors: dict[str, list[str]] = field(default_factory=dict, kw_only=True)
    problem: str | None = field(default=None, kw_only=True)

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def refused(self, status: int, problem: Any, *, said: frozenset[str] = frozenset()) -> None:
        """Show a refusal: each of its ``errors[]`` under the input :data:`FIELD_OF` maps its
        field to (unless the form has ``said`` that input's error already, in its own words), a
        problem without fields above the form."""
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
            named = True
            if name not in said:
                self.add_error(name, message)
        if not named:
            self.problem = str(body.get("detail") or body.get("title") or f"Refused ({status}).")


class Contacts(TypedDict):
    email: str
    sms: str
    webhook: str


@dataclass
class NotifyForm(Form):
    """Who to tell about a delivery: an e-mail address, an SMS number, a webhook (on their own,
    or the schedule form's "Tell me")."""

    email: str = ""
    sms: str = ""
    webhook: str = ""

    @classmethod
    def parse(cls, form: dict[str, str]) -> NotifyForm:
        return cls(**cls._contacts(form))

    @staticmethod
    def _contacts(form: dict[str, str]) -> Contacts:
        def typed(name: str) -> str:
            return form.get(name, "").strip()

        return Contacts(email=typed("email"), sms=typed("sms"), webhook=typed("webhook"))

    def notify(self) -> dict[str, str]:
        """The notify-me request (the fields filled in; empty when none is)."""
        fields = (("emailAddress", self.email), ("sms", self.sms), ("webhookUrl", self.webhook))
        return {name: value for name, value in fields if value}


def _request_key(form: dict[str, str]) -> str:
    """The form's own key (one per form shown: submitting it twice acts once), or a new one."""
    key = form.get("request_key", "").strip()
    return key if 8 <= len(key) <= 64 else secrets.token_urlsafe(18)


@dataclass
class ChangeForm(Form):
    """A delivery's new pickup or drop-off (ingestion's reschedule); an empty field keeps the
    place it has."""

    pickup: str = ""
    dropoff: str = ""
    request_key: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    @classmethod
    def parse(cls, form: dict[str, str]) -> ChangeForm:
        return cls(
            pickup=form.get("pickup", "").strip(),
            dropoff=form.get("dropoff", "").strip(),
            request_key=_request_key(form),
        )

    def request(self) -> dict[str, str]:
        """Ingestion's reschedule body: the places filled in (empty when none is)."""
        fields = (("pickupLocation", self.pickup), ("dropOffLocation", self.dropoff))
        return {name: value for name, value in fields if value}


@dataclass
class ScheduleForm(NotifyForm):
    pickup: str = ""
    dropoff: str = ""
    size: str = "Small"
    weight: str = "1"
    tag: str = ""
    deadline: str = ""
    expedited: bool = False
    confirmation: str = "None"
    # One key per form shown: submitting the same form twice schedules once.
    request_key: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    @classmethod
    def parse(cls, form: dict[str, str]) -> ScheduleForm:
        return cls(
            pickup=form.get("pickup", "").strip(),
            dropoff=form.get("dropoff", "").strip(),
            size=form.get("size", "Small"),
            weight=form.get("weight", "").strip(),
            tag=form.get("tag", "").strip(),
            deadline=form.get("deadline", "").strip(),
            expedited=form.get("expedited") in {"on", "true", "1"},
            confirmation=form.get("confirmation", "None"),
            request_key=_request_key(form),
            **cls._contacts(form),
        )

    def request(self, owner_id: str) -> dict[str, Any]:
        """Ingestion's request body (a weight that is not a number goes as typed: see above)."""
        weight = weight_of(self.weight)
        package: dict[str, Any] = {
            "size": self.size,
            "weight": self.weight if weight is None else weight,
        }
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
        notify = self.notify()
        if notify:
            body["notify"] = notify
        return body

    def refused(self, status: int, problem: Any, *, said: frozenset[str] = frozenset()) -> None:
        """Ingestion's refusal; a weight that is not a number in the form's words (see above)."""
        if weight_of(self.weight) is None:
            self.add_error("weight", WEIGHT_ERROR)
            said = said | {"weight"}
        super().refused(status, problem, said=said)
