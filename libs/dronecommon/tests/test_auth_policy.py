"""Who gets in where: customer and service tokens, route policies, Entra v1 and v2 tokens (the
rule that production never runs without tokens is in test_settings.py).

A real app (``create_service_app``) in process, with real JWTs signed by the development issuer.
Entra's own tokens cannot be had here: tokens shaped exactly like Entra's v2 and v1 access tokens
are signed by a local key that the app trusts in place of Entra's published keys.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import ValidationError

from dronecommon import create_service_app
from dronecommon.auth import Caller, DevIssuer, requires
from dronecommon.settings import AuthSettings, ServiceSettings
from dronetesting.apps import app_client
from dronetesting.tokens import TEST_PUBLIC_AUDIENCE, LocalIssuer


class PolicySettings(ServiceSettings):
    pass


Writer = Annotated[Caller, requires("Things.Write")]
Customer = Annotated[Caller, requires(customers=True)]
Reader = Annotated[Caller, requires("Things.Write", "Things.Read", customers=True)]


def _view(caller: Caller) -> dict[str, Any]:
    return {
        "kind": caller.kind,
        "account": caller.account_id,
        "user": caller.user_id,
        "operator": caller.operator,
        "sees": caller.sees_everything,
    }


def make_app(auth: AuthSettings) -> Any:
    router = APIRouter(prefix="/things")

    @router.put("/write")
    async def write(caller: Writer) -> dict[str, Any]:
        return _view(caller)

    @router.get("/mine")
    async def mine(caller: Customer) -> dict[str, Any]:
        return _view(caller)

    @router.get("/read")
    async def read(caller: Reader) -> dict[str, Any]:
        return _view(caller)

    return create_service_app(
        PolicySettings(auth=auth, log_json=False),
        title="policies",
        routers=[router],
        configure_logs=False,
    )


async def statuses(
    auth: AuthSettings, headers: dict[str, str]
) -> tuple[int, int, int, httpx.Response]:
    async with app_client(make_app(auth)) as http:
        write = await http.put("/things/write", headers=headers)
        mine = await http.get("/things/mine", headers=headers)
        read = await http.get("/things/read", headers=headers)
    return write.status_code, mine.status_code, read.status_code, read


async def test_a_service_token_reaches_only_routes_naming_one_of_its_roles(
    dev_issuer: LocalIssuer,
) -> None:
    write, mine, read, body = await statuses(
        dev_issuer.settings, dev_issuer.service("Things.Write")
    )
    assert (write, mine, read) == (200, 403, 200)
    assert body.json() == {
        "kind": "service",
        "account": None,
        "user": None,
        "operator": False,
        "sees": True,
    }
    write, mine, read, _ = await statuses(dev_issuer.settings, dev_issuer.service("Things.Read"))
    assert (write, mine, read) == (403, 403, 200)
    assert (await statuses(dev_issuer.settings, dev_issuer.service()))[:3] == (403, 403, 403)


async def test_a_customer_token_reaches_customer_routes_only(dev_issuer: LocalIssuer) -> None:
    headers = dev_issuer.customer("contoso", "alice")
    write, mine, read, body = await statuses(dev_issuer.settings, headers)
    assert (write, mine, read) == (403, 200, 200)
    assert body.json() == {
        "kind": "customer",
        "account": "contoso",
        "user": "alice",
        "operator": False,
        "sees": False,
    }
    # Even holding a service's role name: a customer token never reaches an internal route.
    forged = dev_issuer.customer("contoso", "alice", roles=("Things.Write",))
    assert (await statuses(dev_issuer.settings, forged))[0] == 403


async def test_the_403_is_problem_json_and_says_why(dev_issuer: LocalIssuer) -> None:
    async with app_client(make_app(dev_issuer.settings)) as http:
        response = await http.put("/things/write", headers=dev_issuer.customer())
        service = await http.get("/things/mine", headers=dev_issuer.service("Things.Write"))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "customer token cannot call this route" in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
    assert "for customers" in service.json()["detail"]


async def test_an_operator_sees_everything(dev_issuer: LocalIssuer) -> None:
    headers = dev_issuer.customer("fabrikam", "ops", roles=("Operator",))
    body = (await statuses(dev_issuer.settings, headers))[3].json()
    assert body["operator"] is True
    assert body["sees"] is True


async def test_account_and_user_claims_are_configurable(dev_issuer: LocalIssuer) -> None:
    settings = dev_issuer.settings_with(account_claim="org", user_claim="sub")
    headers = dev_issuer.customer("contoso", "alice", extra_claims={"org": "acme"})
    body = (await statuses(settings, headers))[3].json()
    assert (body["account"], body["user"]) == ("acme", "alice")
    # A customer token that names no account is refused, not taken for everyone's.
    nameless = dev_issuer.customer(extra_claims={"tid": ""})
    async with app_client(make_app(dev_issuer.settings)) as http:
        response = await http.get("/things/mine", headers=nameless)
    assert response.status_code == 403
    assert "names no account" in response.json()["detail"]


async def test_tokens_for_other_audiences_are_401(dev_issuer: LocalIssuer) -> None:
    async with app_client(make_app(dev_issuer.settings)) as http:
        other = await http.get("/things/read", headers=dev_issuer.headers(audience="elsewhere"))
        none = await http.get("/things/read")
    assert other.status_code == 401
    assert other.json()["detail"] == "the token is not meant for this service"
    assert none.status_code == 401


async def test_allowed_callers_apply_to_service_tokens_only(dev_issuer: LocalIssuer) -> None:
    settings = dev_issuer.settings_with(allowed_callers=["workflow"])
    assert (await statuses(settings, dev_issuer.service("Things.Write")))[0] == 403
    admitted = dev_issuer.service("Things.Write", caller="workflow")
    assert (await statuses(settings, admitted))[0] == 200
    # Customers are not service callers: the list does not name them.
    assert (await statuses(settings, dev_issuer.customer()))[1] == 200


async def test_with_tokens_off_everyone_is_admitted_and_sees_everything() -> None:
    write, mine, read, body = await statuses(AuthSettings(enabled=False), {})
    assert (write, mine, read) == (200, 200, 200)
    assert body.json()["kind"] == "anonymous"
    assert body.json()["sees"] is True


def test_owners_and_operators() -> None:
    alice = Caller.from_claims({"sub": "alice", "tid": "contoso", "oid": "alice"}, kind="customer")
    assert alice.may_access("alice", "contoso")
    assert not alice.may_access("alice", "fabrikam")
    assert not alice.may_access("bob", "contoso")
    operator = Caller.from_claims(
        {"sub": "o", "tid": "fabrikam", "oid": "o", "roles": ["Operator"]}, kind="customer"
    )
    assert operator.may_access("alice", "contoso")
    service = Caller.from_claims({"sub": "w", "tid": "t", "oid": "w"}, kind="service")
    assert (service.account_id, service.user_id) == (None, None)
    assert service.may_access("alice", "contoso")


# --- Microsoft Entra ID token shapes ---------------------------------------------------------

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
API_CLIENT_ID = "6e4e5a1c-7bd2-4c3b-9f0e-2f1d8b7a9c11"
CALLER_CLIENT_ID = "0b8a1f3e-5c2d-4e6f-8a9b-1c2d3e4f5a6b"


def entra_settings(issuer: LocalIssuer) -> AuthSettings:
    """What the charts configure: the v2 issuer and the API's application id as the audience."""
    return issuer.settings_with(
        issuer=f"https://login.microsoftonline.com/{TENANT}/v2.0",
        audience=API_CLIENT_ID,
        public_audience=None,
    )


def v2_token(issuer: DevIssuer) -> str:
    """A v2 app-only access token as Entra issues it for ``api://<app id>/.default``."""
    return issuer.mint(
        issuer=f"https://login.microsoftonline.com/{TENANT}/v2.0",
        audience=API_CLIENT_ID,
        subject=str(uuid.uuid4()),
        azp=CALLER_CLIENT_ID,
        oid=str(uuid.uuid4()),
        roles=["Things.Write"],
        extra_claims={"tid": TENANT, "ver": "2.0", "azpacr": "2", "idtyp": "app"},
    )


def v1_token(issuer: DevIssuer) -> str:
    """The v1 token the same app registration gives without requestedAccessTokenVersion 2."""
    token: str = issuer.mint(
        issuer=f"https://sts.windows.net/{TENANT}/",
        audience=f"api://{API_CLIENT_ID}",
        subject=str(uuid.uuid4()),
        oid=str(uuid.uuid4()),
        roles=["Things.Write"],
        extra_claims={"tid": TENANT, "ver": "1.0", "appid": CALLER_CLIENT_ID, "appidacr": "2"},
    )
    return token


async def test_entra_v2_tokens_are_accepted(dev_issuer: LocalIssuer) -> None:
    async with app_client(make_app(entra_settings(dev_issuer))) as http:
        response = await http.put(
            "/things/write", headers={"Authorization": f"Bearer {v2_token(dev_issuer.issuer)}"}
        )
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "service"


async def test_entra_v1_tokens_are_401_with_a_detail_that_says_so(dev_issuer: LocalIssuer) -> None:
    async with app_client(make_app(entra_settings(dev_issuer))) as http:
        response = await http.put(
            "/things/write", headers={"Authorization": f"Bearer {v1_token(dev_issuer.issuer)}"}
        )
    assert response.status_code == 401
    detail = response.json()["detail"]
    assert "Microsoft Entra ID v1 token" in detail
    assert f"https://sts.windows.net/{TENANT}/" in detail
    assert "requestedAccessTokenVersion to 2" in detail
    assert "invalid_token" in response.headers["www-authenticate"]


async def test_a_v2_issuer_with_an_application_id_uri_audience_never_matches(
    dev_issuer: LocalIssuer,
) -> None:
    # The configuration the charts used to have: v2 tokens never carry api://... as aud.
    settings = entra_settings(dev_issuer).model_copy(update={"audience": f"api://{API_CLIENT_ID}"})
    async with app_client(make_app(settings)) as http:
        response = await http.put(
            "/things/write", headers={"Authorization": f"Bearer {v2_token(dev_issuer.issuer)}"}
        )
    assert response.status_code == 401
    assert response.json()["detail"] == "the token is not meant for this service"


# --- settings -------------------------------------------------------------------------------


def test_tokens_are_on_unless_switched_off() -> None:
    assert AuthSettings().enabled is True


def test_service_and_public_audiences_must_differ() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        AuthSettings(audience=TEST_PUBLIC_AUDIENCE, public_audience=TEST_PUBLIC_AUDIENCE)


def test_an_app_with_tokens_on_but_no_issuer_fails_at_once() -> None:
    router = APIRouter()
    with pytest.raises(ValueError, match="switch tokens off explicitly"):
        create_service_app(
            PolicySettings(log_json=False), title="t", routers=[router], configure_logs=False
        )
    # An app with only health routes (the workflow) needs no issuer.
    create_service_app(PolicySettings(log_json=False), title="t", configure_logs=False)


async def test_the_policies_run_on_the_event_loop_not_in_the_thread_pool(
    dev_issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI runs a plain-function dependency in its thread pool: a thread hop on every request
    (a tenth of a busy service's CPU when `current_caller` was one)."""
    import fastapi.dependencies.utils

    async def no_thread_pool(*args: object, **kwargs: object) -> object:
        raise AssertionError("a dependency ran in the thread pool")

    monkeypatch.setattr(fastapi.dependencies.utils, "run_in_threadpool", no_thread_pool)
    write, mine, read, _ = await statuses(
        dev_issuer.settings, dev_issuer.service("Things.Write", "Things.Read")
    )
    assert (write, mine, read) == (200, 403, 200)
