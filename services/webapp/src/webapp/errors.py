"""The web app's refusals. Pages show them as HTML; the scripts' JSON routes as problem+json."""

from __future__ import annotations

from dronecommon import DomainError


class ServiceUnavailable(DomainError):
    """A service the page needs did not answer; the browser retries later."""

    status = 503
    problem = "service-unavailable"

    def __init__(self, service: str, why: str) -> None:
        super().__init__(f"The {service} service is unavailable: {why}", retry_after=5)
        self.service = service


class NotFound(DomainError):
    """No such delivery, or not one this user may see (the services do not tell which)."""

    status = 404
    problem = "not-found"


class SignInRequired(DomainError):
    """The page or call needs a signed-in user."""

    status = 401
    problem = "sign-in-required"


class OperatorsOnly(DomainError):
    """The page is for users holding the Operator role."""

    status = 403
    problem = "operators-only"


class BadForm(DomainError):
    """A form that did not come from this app's page (no or a wrong CSRF token, wrong type)."""

    status = 403
    problem = "bad-form"
