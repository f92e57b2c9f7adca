"""Inbound bearer tokens: the status codes of the auth dependency (401 with its challenge, 403,
503 without signing keys), disabled auth, the caller from Entra claims, the authenticator without
FastAPI, and the development issuer whose tokens the services accept.

A real FastAPI app in-process with real JWTs signed by the development issuer. JWKS over HTTP:
``test_auth_jwks.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import runpy
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from dronecommon.auth import Caller, DevIssuer, auth_dependency
from dronecommon.auth.inbound import Authenticator
from dronecommon.settings import AuthSettings
from dronetesting.tokens import TEST_CALLER, LocalIssuer

from .conftest import bearer, call, challenge, make_app

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"


async def test_no_token_is_401_with_a_bearer_challenge(dev_issuer: LocalIssuer) -> None:
    response = await call(make_app(auth_dependency(dev_issuer.settings)))
    assert response.status_code == 401
    assert challenge(response) == "Bearer"


@pytest.mark.parametrize(
    "authorization", ["Bearer not-a-jwt", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Bearer"]
)
async def test_malformed_or_non_bearer_credentials_are_401(
    dev_issuer: LocalIssuer, authorization: str
) -> None:
    app = make_app(auth_dependency(dev_issuer.settings))
    response = await call(app, {"Authorization": authorization})
    assert response.status_code == 401
    assert challenge(response).startswith("Bearer")


async def test_valid_token_is_200_with_the_caller(dev_issuer: LocalIssuer) -> None:
    app = make_app(auth_dependency(dev_issuer.settings))
    token = dev_issuer.mint(subject="svc-sub", azp="workflow", oid="oid-1", roles=["Writer"])
    response = await call(app, bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "subject": "svc-sub",
        "appId": "workflow",
        "objectId": "oid-1",
        "roles": ["Writer"],
        "authenticated": True,
    }


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"audience": "api://someone-else"}, "not meant for this service"),
        ({"issuer": "https://login.microsoftonline.com/evil/v2.0"}, "untrusted issuer"),
        ({"issued_at": time.time() - 7200, "lifetime": 3600}, "expired"),
        ({"not_before": time.time() + 3600}, "not valid yet"),
    ],
    ids=["wrong-audience", "wrong-issuer", "expired", "not-yet-valid"],
)
async def test_invalid_claims_are_401_invalid_token(
    dev_issuer: LocalIssuer, claims: dict[str, Any], description: str
) -> None:
    app = make_app(auth_dependency(dev_issuer.settings))
    response = await call(app, bearer(dev_issuer.mint(**claims)))
    assert response.status_code == 401
    assert challenge(response).startswith('Bearer error="invalid_token"')
    assert description in challenge(response)


async def test_expiry_within_the_leeway_is_accepted(dev_issuer: LocalIssuer) -> None:
    app = make_app(auth_dependency(dev_issuer.settings_with(leeway_seconds=60)))
    token = dev_issuer.mint(issued_at=time.time() - 3610, lifetime=3600)  # expired 10 s ago
    assert (await call(app, bearer(token))).status_code == 200


async def test_token_signed_by_another_key_is_401(dev_issuer: LocalIssuer) -> None:
    app = make_app(auth_dependency(dev_issuer.settings))
    stranger = DevIssuer.generate(dev_issuer.issuer.issuer)
    unknown_kid = stranger.mint(audience=dev_issuer.audience)
    forged_kid = stranger.mint(audience=dev_issuer.audience, kid=dev_issuer.issuer.kid)
    response = await call(app, bearer(unknown_kid))
    assert response.status_code == 401
    assert "not one of the issuer's keys" in challenge(response)
    response = await call(app, bearer(forged_kid))
    assert response.status_code == 401
    assert "signature is not valid" in challenge(response)


def _segment(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_algorithm_confusion_and_unsigned_tokens_are_401(dev_issuer: LocalIssuer) -> None:
    app = make_app(auth_dependency(dev_issuer.settings))
    claims = jwt.decode(dev_issuer.mint(), options={"verify_signature": False})
    public_pem = json.dumps(dev_issuer.issuer.jwks()).encode()
    # HS256 "signed" with public material, the classic RS256 -> HS256 confusion.
    header = _segment({"alg": "HS256", "kid": dev_issuer.issuer.kid, "typ": "JWT"})
    signing_input = f"{header}.{_segment(claims)}".encode()
    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    confused = signing_input.decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    unsigned = f"{_segment({'alg': 'none', 'kid': dev_issuer.issuer.kid})}.{_segment(claims)}."
    for token in (confused, unsigned):
        response = await call(app, bearer(token))
        assert response.status_code == 401
        assert "must be signed with RS256 or ES256" in challenge(response)


async def test_es256_tokens_are_accepted(tmp_path: Path) -> None:
    issuer = DevIssuer.generate(algorithm="ES256")
    _, jwks_file = issuer.save(tmp_path)
    app = make_app(auth_dependency(issuer.auth_settings(audience="api://x", jwks_file=jwks_file)))
    response = await call(app, bearer(issuer.mint(audience="api://x", azp="a")))
    assert response.status_code == 200, response.text


async def test_caller_not_in_allowed_callers_is_403(dev_issuer: LocalIssuer) -> None:
    settings = dev_issuer.settings_with(allowed_callers=["ingestion", "oid-allowed"])
    app = make_app(auth_dependency(settings))
    refused = await call(app, dev_issuer.headers(azp="stranger", oid="oid-stranger"))
    assert refused.status_code == 403
    assert challenge(refused).startswith('Bearer error="insufficient_scope"')
    assert (await call(app, dev_issuer.headers(azp="ingestion"))).status_code == 200
    by_oid = await call(app, dev_issuer.headers(azp="other", oid="oid-allowed"))
    assert by_oid.status_code == 200
    # Entra v1 tokens name the application in ``appid``.
    v1 = dev_issuer.headers(azp=None, extra_claims={"appid": "ingestion", "ver": "1.0"})
    assert (await call(app, v1)).status_code == 200


async def test_disabled_auth_admits_anonymous_callers_whatever_they_send() -> None:
    app = make_app(auth_dependency(AuthSettings(enabled=False)))
    response = await call(app)
    assert response.status_code == 200
    assert response.json()["subject"] == "anonymous"
    assert response.json()["authenticated"] is False
    assert (await call(app, {"Authorization": "Bearer garbage"})).status_code == 200
    # The document is the one of a service that checks tokens.
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"


async def test_enabled_auth_documents_the_bearer_scheme(dev_issuer: LocalIssuer) -> None:
    app = make_app(auth_dependency(dev_issuer.settings))
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"


def test_enabled_auth_without_issuer_audience_or_keys_fails_at_startup() -> None:
    with pytest.raises(
        ValueError,
        match=r"auth\.issuer, auth\.audience or auth\.public_audience, auth\.jwks_url or",
    ):
        auth_dependency(AuthSettings(enabled=True))


async def test_missing_jwks_file_is_503(dev_issuer: LocalIssuer) -> None:
    app = make_app(auth_dependency(dev_issuer.settings_with(jwks_file="/nonexistent/jwks.json")))
    response = await call(app, dev_issuer.headers())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_caller_from_entra_claims() -> None:
    caller = Caller.from_claims(
        {"sub": "s", "appid": "app", "oid": "o", "tid": "t", "roles": ["A", "B"]}
    )
    assert (caller.app_id, caller.object_id, caller.tenant_id) == ("app", "o", "t")
    assert caller.has_role("B")
    assert not caller.has_role("C")


async def test_authenticator_can_be_used_without_fastapi(dev_issuer: LocalIssuer) -> None:
    authenticator = Authenticator(dev_issuer.settings)
    caller = await authenticator.authenticate(dev_issuer.mint(oid="o"))
    assert (caller.app_id, caller.object_id) == (TEST_CALLER, "o")


# --- development issuer ------------------------------------------------------------------------


def test_dev_issuer_files_and_round_trip(tmp_path: Path) -> None:
    issuer = DevIssuer.load_or_create(tmp_path / "keys")
    key_file = tmp_path / "keys" / "signing-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    jwks = json.loads((tmp_path / "keys" / "jwks.json").read_text())
    assert [key["kid"] for key in jwks["keys"]] == [issuer.kid]
    assert jwks["keys"][0]["alg"] == "RS256"
    assert "d" not in jwks["keys"][0]  # public material only
    again = DevIssuer.load_or_create(tmp_path / "keys")
    assert again.kid == issuer.kid
    token = again.mint(audience="api://x", azp="a", roles=["R"], lifetime=60)
    claims = jwt.decode(token, jwt.PyJWK(jwks["keys"][0]), algorithms=["RS256"], audience="api://x")
    assert claims["azp"] == "a"
    assert claims["roles"] == ["R"]
    assert claims["exp"] - claims["iat"] == 60


def test_dev_issuer_rotation_keeps_the_previous_key_trusted(tmp_path: Path) -> None:
    issuer = DevIssuer.generate()
    old_kid = issuer.kid
    issuer.rotate()
    assert [key["kid"] for key in issuer.jwks()["keys"]] == [issuer.kid, old_kid]


async def test_dev_issuer_script_prints_a_token_the_service_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = SCRIPTS / "dev_issuer.py"
    main = runpy.run_path(str(script), run_name="dev_issuer")["main"]
    folder = tmp_path / "issuer"
    assert main(["init", "--dir", str(folder)]) == 0
    assert "AUTH__JWKS_FILE" in capsys.readouterr().out
    argv = ["token", "--dir", str(folder), "--aud", "api://delivery", "--service", "workflow"]
    assert main([*argv, "--role", "Writer"]) == 0
    token = capsys.readouterr().out.strip()
    issuer = DevIssuer.load(folder / "signing-key.pem")
    settings = issuer.auth_settings(audience="api://delivery", jwks_file=folder / "jwks.json")
    response = await call(make_app(auth_dependency(settings)), bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["appId"] == "workflow"
    assert response.json()["roles"] == ["Writer"]
