"""Authentication: inbound bearer tokens, the development issuer, credentials and keyless clients.

Inbound tests run a real FastAPI app in-process with real JWTs signed by the development issuer;
JWKS over HTTP comes from a real aiohttp server on a loopback port. Microsoft Entra cannot run here,
so the Azure side is tested at the SDK boundary with fake credentials (named as such), and Redis
re-authentication against a real redis-server with an ACL user.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import runpy
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from azure.core.credentials import AccessToken
from azure.identity.aio import (
    AzureCliCredential,
    AzureDeveloperCliCredential,
    ChainedTokenCredential,
    EnvironmentCredential,
    WorkloadIdentityCredential,
)
from fastapi import Depends, FastAPI
from pydantic import SecretStr
from redis.asyncio import Redis

from dronecommon.auth import (
    REDIS_SCOPE,
    AzureIdentityOIDCCallback,
    BearerTokenProvider,
    Caller,
    CredentialConfigurationError,
    CurrentCaller,
    DevIssuer,
    DevTokenProvider,
    EntraIdCredentialProvider,
    auth_dependency,
    create_credential,
    create_mongo_client,
    create_redis_client,
    create_secret_client,
    create_servicebus_client,
    create_sync_credential,
    mongo_client_kwargs,
    outbound_token_provider,
    workload_identity_configured,
)
from dronecommon.auth.inbound import Authenticator
from dronecommon.settings import AuthSettings, MongoSettings, QueueSettings, RedisSettings
from dronetesting.servers import RedisServer, free_port
from dronetesting.tokens import TEST_CALLER, LocalIssuer

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"

# Registers the ``dev_issuer`` fixture until the shared plugin does.


# --- helpers -----------------------------------------------------------------------------------


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_app(dependency: Callable[..., Any]) -> FastAPI:
    """The smallest app with the auth dependency on every route, echoing the caller."""
    app = FastAPI(dependencies=[Depends(dependency)])

    @app.get("/whoami")
    async def whoami(caller: CurrentCaller) -> dict[str, Any]:
        return {
            "subject": caller.subject,
            "appId": caller.app_id,
            "objectId": caller.object_id,
            "roles": list(caller.roles),
            "authenticated": caller.authenticated,
        }

    return app


async def call(
    app: FastAPI, headers: dict[str, str] | None = None, path: str = "/whoami"
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers or {})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge(response: httpx.Response) -> str:
    return str(response.headers.get("www-authenticate", ""))


class JwksServer:
    """A real HTTP server (aiohttp on 127.0.0.1) serving a JWKS, counting fetches."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fetches = 0
        self.mode = "ok"  # ok | error | slow
        self.release = asyncio.Event()
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/keys"

    async def _keys(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.mode == "error":
            return web.Response(status=500, text="boom")
        if self.mode == "slow":
            await self.release.wait()
        return web.json_response(self.document)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/keys", self._keys)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    server = JwksServer()
    await server.start()
    yield server
    await server.stop()


def url_settings(issuer: LocalIssuer, server: JwksServer, **overrides: Any) -> AuthSettings:
    return issuer.settings_with(jwks_file=None, jwks_url=server.url, **overrides)


# --- inbound: status codes ---------------------------------------------------------------------


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


# --- inbound: JWKS over HTTP -------------------------------------------------------------------


async def test_jwks_from_url_is_cached_then_refetched_after_expiry(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.document = dev_issuer.issuer.jwks()
    clock = FakeClock()
    settings = url_settings(dev_issuer, jwks_server, jwks_cache_seconds=600)
    app = make_app(auth_dependency(settings, clock=clock))
    for _ in range(3):
        assert (await call(app, dev_issuer.headers())).status_code == 200
    assert jwks_server.fetches == 1
    clock.advance(601)
    assert (await call(app, dev_issuer.headers())).status_code == 200
    assert jwks_server.fetches == 2


async def test_concurrent_requests_share_one_jwks_fetch(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.document = dev_issuer.issuer.jwks()
    app = make_app(auth_dependency(url_settings(dev_issuer, jwks_server)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        responses = await asyncio.gather(
            *(client.get("/whoami", headers=dev_issuer.headers()) for _ in range(10))
        )
    assert [response.status_code for response in responses] == [200] * 10
    assert jwks_server.fetches == 1


async def test_key_rotation_refetches_once_per_interval(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.document = dev_issuer.issuer.jwks()
    clock = FakeClock()
    dependency = auth_dependency(
        url_settings(dev_issuer, jwks_server), refetch_interval=30, clock=clock
    )
    app = make_app(dependency)
    assert (await call(app, dev_issuer.headers())).status_code == 200

    dev_issuer.issuer.rotate(keep_previous=False)
    jwks_server.document = dev_issuer.issuer.jwks()
    clock.advance(31)
    assert (await call(app, dev_issuer.headers())).status_code == 200  # unknown kid: refetched
    assert jwks_server.fetches == 2

    # Forged kids cannot make the service hammer the issuer: one refetch per interval.
    stranger = DevIssuer.generate(dev_issuer.issuer.issuer)
    for _ in range(3):
        response = await call(app, bearer(stranger.mint(audience=dev_issuer.audience)))
        assert response.status_code == 401
    assert jwks_server.fetches == 2


async def test_jwks_endpoint_down_is_503_then_recovers(dev_issuer: LocalIssuer) -> None:
    server = JwksServer()  # not started yet: connection refused
    server.document = dev_issuer.issuer.jwks()
    app = make_app(auth_dependency(url_settings(dev_issuer, server), refetch_interval=0))
    try:
        response = await call(app, dev_issuer.headers())
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert "signing keys are unavailable" in response.json()["detail"]
        await server.start()
        assert (await call(app, dev_issuer.headers())).status_code == 200
    finally:
        await server.stop()


async def test_jwks_endpoint_errors_are_503(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.mode = "error"
    app = make_app(auth_dependency(url_settings(dev_issuer, jwks_server)))
    assert (await call(app, dev_issuer.headers())).status_code == 503
    # A failure moments ago is not retried on every request.
    assert (await call(app, dev_issuer.headers())).status_code == 503
    assert jwks_server.fetches == 1


async def test_jwks_fetch_is_bounded_by_its_timeout(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.mode = "slow"
    app = make_app(auth_dependency(url_settings(dev_issuer, jwks_server), jwks_timeout=0.3))
    started = time.monotonic()
    response = await call(app, dev_issuer.headers())
    assert response.status_code == 503
    assert "timed out" in response.json()["detail"]
    assert time.monotonic() - started < 2


async def test_cached_keys_outlive_a_failed_refresh(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.document = dev_issuer.issuer.jwks()
    clock = FakeClock()
    settings = url_settings(dev_issuer, jwks_server, jwks_cache_seconds=60)
    app = make_app(auth_dependency(settings, clock=clock))
    assert (await call(app, dev_issuer.headers())).status_code == 200
    jwks_server.mode = "error"
    clock.advance(61)
    assert (await call(app, dev_issuer.headers())).status_code == 200
    assert jwks_server.fetches == 2


async def test_invalid_jwks_documents_are_503(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.document = {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]}
    app = make_app(auth_dependency(url_settings(dev_issuer, jwks_server)))
    response = await call(app, dev_issuer.headers())
    assert response.status_code == 503
    assert "no RS256/ES256 signature keys" in response.json()["detail"]


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


# --- credentials -------------------------------------------------------------------------------


class FakeAsyncCredential:
    """Fake of an async Azure credential (Entra cannot run here): JWTs carrying ``oid``."""

    def __init__(
        self, *, lifetime: float = 3600.0, oid: str = "object-id-1", fail: bool = False
    ) -> None:
        self.lifetime = lifetime
        self.oid = oid
        self.fail = fail
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        if self.fail:
            raise RuntimeError("entra is unreachable")
        expires_on = int(time.time() + self.lifetime)
        claims = {"oid": self.oid, "n": len(self.scopes), "exp": expires_on}
        token = jwt.encode(claims, "fake-signing-secret-" * 4, algorithm="HS256")
        return AccessToken(token, expires_on)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> FakeAsyncCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class FakeSyncCredential:
    """Fake of a sync Azure credential (as PyMongo's OIDC callback uses)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("mongo-token", int(time.time() + 1800))


def _workload_env(tmp_path: Path) -> dict[str, str]:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("federated-token")
    return {
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        "AZURE_CLIENT_ID": "client-1",
        "AZURE_TENANT_ID": "tenant-1",
        "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
    }


async def test_workload_identity_when_the_webhook_injected_its_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _workload_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    assert workload_identity_configured()
    async with create_credential() as credential:
        assert isinstance(credential, WorkloadIdentityCredential)
        client = credential._client
        assert (client._client_id, client._tenant_id) == ("client-1", "tenant-1")
    sync_credential = create_sync_credential()
    assert type(sync_credential).__name__ == "WorkloadIdentityCredential"
    sync_credential.close()  # type: ignore[attr-defined]


async def test_developer_chain_without_workload_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    assert not workload_identity_configured()
    async with create_credential() as credential:
        assert isinstance(credential, ChainedTokenCredential)
        kinds = [type(item) for item in credential.credentials]
        assert kinds == [EnvironmentCredential, AzureCliCredential, AzureDeveloperCliCredential]


def test_incomplete_workload_identity_names_the_missing_variables(tmp_path: Path) -> None:
    environ = _workload_env(tmp_path)
    del environ["AZURE_TENANT_ID"]
    with pytest.raises(CredentialConfigurationError, match="AZURE_TENANT_ID is not"):
        create_credential(environ=environ)


async def test_bearer_token_provider_caches_and_refreshes_before_expiry() -> None:
    credential = FakeAsyncCredential(lifetime=3600)
    clock = FakeClock(time.time())
    provider = BearerTokenProvider(credential, "api://x/.default", clock=clock)
    first = await provider.token()
    assert await provider.token() == first
    assert credential.scopes == [("api://x/.default",)]
    clock.advance(3600 - 299)  # inside the five-minute margin
    assert await provider.token() != first
    assert len(credential.scopes) == 2


async def test_bearer_token_provider_fetches_once_for_concurrent_callers() -> None:
    credential = FakeAsyncCredential()
    provider = BearerTokenProvider(credential, "s")
    tokens = await asyncio.gather(*(provider.token() for _ in range(20)))
    assert len(set(tokens)) == 1
    assert len(credential.scopes) == 1


async def test_bearer_token_provider_keeps_a_valid_token_when_refresh_fails() -> None:
    credential = FakeAsyncCredential(lifetime=3600)
    clock = FakeClock(time.time())
    provider = BearerTokenProvider(credential, "s", clock=clock)
    first = await provider.token()
    credential.fail = True
    clock.advance(3500)  # due for refresh, not expired
    assert await provider.token() == first
    clock.advance(200)  # expired
    with pytest.raises(RuntimeError, match="unreachable"):
        await provider.token()


async def test_outbound_token_provider_choice(dev_issuer: LocalIssuer) -> None:
    assert outbound_token_provider(AuthSettings(), target="delivery") is None
    scopes = {"delivery": "api://11111111-2222-3333-4444-555555555555/.default"}
    entra = outbound_token_provider(
        AuthSettings(outbound_scopes=scopes), FakeAsyncCredential(), target="delivery"
    )
    assert isinstance(entra, BearerTokenProvider)
    assert entra.scope == scopes["delivery"]
    assert outbound_token_provider(AuthSettings(outbound_scopes=scopes), target="package") is None
    with pytest.raises(CredentialConfigurationError, match=r"outbound_scopes\.delivery"):
        outbound_token_provider(AuthSettings(outbound_scopes=scopes), target="delivery")

    dev_settings = AuthSettings(
        outbound_scopes={"delivery": f"api://{dev_issuer.audience}/.default"},
        dev_signing_key_file=str(dev_issuer.key_file),
        dev_roles={"delivery": ["Deliveries.Write"], "package": ["Packages.Write"]},
        issuer=dev_issuer.issuer.issuer,
    )
    dev = outbound_token_provider(dev_settings, caller="workflow", target="delivery")
    assert isinstance(dev, DevTokenProvider)
    token = await dev.token()
    assert await dev.token() == token  # cached
    response = await call(make_app(auth_dependency(dev_issuer.settings)), bearer(token))
    assert response.status_code == 200
    assert response.json()["appId"] == "workflow"
    # The roles assigned for that service only, and the v2 audience of the scope.
    assert response.json()["roles"] == ["Deliveries.Write"]
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == dev_issuer.audience
    await dev.close()


# --- keyless clients ---------------------------------------------------------------------------


async def test_servicebus_keyless_gets_the_namespace_and_credential() -> None:
    credential = FakeAsyncCredential()
    client = create_servicebus_client(
        QueueSettings(transport="servicebus", servicebus_namespace="drones"), credential
    )
    try:
        assert client.fully_qualified_namespace == "drones.servicebus.windows.net"
        assert client._credential is credential
    finally:
        await client.close()
    full = create_servicebus_client(
        QueueSettings(servicebus_namespace="sb://drones.servicebus.windows.net/"), credential
    )
    assert full.fully_qualified_namespace == "drones.servicebus.windows.net"
    await full.close()


async def test_servicebus_connection_string_for_the_emulator() -> None:
    connection_string = (
        "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
    )
    settings = QueueSettings(servicebus_connection_string=SecretStr(connection_string))
    client = create_servicebus_client(settings)
    assert client.fully_qualified_namespace == "localhost"
    await client.close()
    with pytest.raises(CredentialConfigurationError, match="both set"):
        create_servicebus_client(
            QueueSettings(
                servicebus_namespace="drones",
                servicebus_connection_string=SecretStr(connection_string),
            ),
            FakeAsyncCredential(),
        )
    with pytest.raises(CredentialConfigurationError, match="servicebus_namespace"):
        create_servicebus_client(QueueSettings())
    with pytest.raises(CredentialConfigurationError, match="credential"):
        create_servicebus_client(QueueSettings(servicebus_namespace="drones"))


async def test_redis_entra_provider_returns_object_id_and_token() -> None:
    credential = FakeAsyncCredential(oid="00000000-aaaa")
    provider = EntraIdCredentialProvider(BearerTokenProvider(credential, REDIS_SCOPE))
    username, token = await provider.get_credentials_async()
    assert username == "00000000-aaaa"
    assert token == provider.tokens.cached.token  # type: ignore[union-attr]
    assert credential.scopes == [(REDIS_SCOPE,)]
    assert provider.get_credentials() == (username, token)
    named = EntraIdCredentialProvider(BearerTokenProvider(credential, REDIS_SCOPE), username="me")
    assert (await named.get_credentials_async())[0] == "me"
    await provider.aclose()
    await named.aclose()


async def test_redis_entra_client_requires_tls_off_loopback() -> None:
    settings = RedisSettings(url="redis://cache.example.net:6380/0", use_entra_id=True)
    with pytest.raises(CredentialConfigurationError, match="rediss://"):
        create_redis_client(settings, FakeAsyncCredential())
    with pytest.raises(CredentialConfigurationError, match="credential"):
        create_redis_client(settings.model_copy(update={"url": "rediss://cache:10000"}))
    tls = create_redis_client(
        settings.model_copy(update={"url": "rediss://cache.example.net:10000/0"}),
        FakeAsyncCredential(),
    )
    try:
        kwargs = tls.connection_pool.connection_kwargs
        assert isinstance(kwargs["credential_provider"], EntraIdCredentialProvider)
        assert tls.connection_pool.connection_class.__name__ == "SSLConnection"
        assert tls.connection_pool.max_connections == settings.max_connections
    finally:
        await tls.aclose()


async def test_redis_without_entra_is_the_plain_url(redis_url: str) -> None:
    client = create_redis_client(RedisSettings(url=redis_url), decode_responses=True)
    try:
        assert "credential_provider" not in client.connection_pool.connection_kwargs
        await client.set("k", "v")
        assert await client.get("k") == "v"
    finally:
        await client.aclose()


class FakeSequenceCredential(FakeAsyncCredential):
    """Fake async Azure credential whose n-th token is ``token-n`` (to set as Redis passwords)."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(f"token-{len(self.scopes)}", int(time.time() + self.lifetime))


async def test_redis_entra_authenticates_and_reauthenticates_on_refresh(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    admin = Redis.from_url(server.url)
    await admin.acl_setuser(
        "workload-oid",
        enabled=True,
        passwords=[f"+token-{n}" for n in range(1, 30)],
        keys=["*"],
        commands=["+@all"],
    )
    # Tokens are due for refresh 0.5-1.5 s after issue: the refresh margin is five minutes and
    # ``AccessToken.expires_on`` is whole seconds.
    credential = FakeSequenceCredential(lifetime=301.5)
    settings = RedisSettings(url=server.url, use_entra_id=True, username="workload-oid")
    client = create_redis_client(settings, credential)
    try:
        assert await client.ping()
        assert await client.acl_whoami() == "workload-oid"
        assert credential.scopes == [(REDIS_SCOPE,)]
        # The first AUTH travels inside HELLO; AUTH itself is only the re-authentication.
        assert "cmdstat_auth" not in await admin.info("commandstats")
        stats: dict[str, Any] = {}
        for _ in range(200):
            await asyncio.sleep(0.02)
            stats = (await admin.info("commandstats")).get("cmdstat_auth", {})
            if stats:
                break
        # Refreshed in the background and re-sent on the idle pooled connection.
        assert credential.scopes[:2] == [(REDIS_SCOPE,), (REDIS_SCOPE,)]
        assert stats["calls"] >= 1
        assert stats["failed_calls"] == 0
        assert await client.ping()
    finally:
        await client.aclose()
        await admin.aclose()


def test_mongo_kwargs_without_oidc_are_only_pool_settings() -> None:
    kwargs = mongo_client_kwargs(MongoSettings(server_selection_timeout=2.5, max_pool_size=7))
    assert kwargs == {"serverSelectionTimeoutMS": 2500, "maxPoolSize": 7}


async def test_mongo_oidc_uses_the_azure_credential_callback() -> None:
    credential = FakeSyncCredential()
    settings = MongoSettings(
        url="mongodb://cluster.example.net:10260/?tls=true",
        use_oidc=True,
        oidc_resource="https://ossrdbms-aad.database.windows.net",
    )
    kwargs = mongo_client_kwargs(settings, credential)
    assert kwargs["authMechanism"] == "MONGODB-OIDC"
    callback = kwargs["authMechanismProperties"]["OIDC_CALLBACK"]
    assert isinstance(callback, AzureIdentityOIDCCallback)
    from pymongo.auth_oidc import OIDCCallbackContext

    result = callback.fetch(OIDCCallbackContext(timeout_seconds=5, username="", version=1))
    assert result.access_token == "mongo-token"
    assert result.expires_in_seconds is not None
    assert 1700 < result.expires_in_seconds <= 1800
    assert credential.scopes == [("https://ossrdbms-aad.database.windows.net/.default",)]
    client = create_mongo_client(settings, credential)  # PyMongo accepts the configuration
    await client.close()


def test_mongo_oidc_imds_provider_and_missing_resource() -> None:
    settings = MongoSettings(
        use_oidc=True, oidc_resource="https://ossrdbms-aad.database.windows.net"
    )
    kwargs = mongo_client_kwargs(settings, imds=True, environ={"AZURE_CLIENT_ID": "client-1"})
    assert kwargs["authMechanismProperties"] == {
        "ENVIRONMENT": "azure",
        "TOKEN_RESOURCE": "https://ossrdbms-aad.database.windows.net",
    }
    assert kwargs["username"] == "client-1"
    with pytest.raises(CredentialConfigurationError, match="oidc_resource"):
        mongo_client_kwargs(MongoSettings(use_oidc=True))


async def test_key_vault_secret_client_is_keyless() -> None:
    credential = FakeAsyncCredential()
    client = create_secret_client("https://drones-kv.vault.azure.net/", credential)
    assert client.vault_url == "https://drones-kv.vault.azure.net"
    await client.close()
    with pytest.raises(CredentialConfigurationError, match="https"):
        create_secret_client("http://drones-kv.vault.azure.net/", credential)


async def test_authenticator_can_be_used_without_fastapi(dev_issuer: LocalIssuer) -> None:
    authenticator = Authenticator(dev_issuer.settings)
    caller = await authenticator.authenticate(dev_issuer.mint(oid="o"))
    assert (caller.app_id, caller.object_id) == (TEST_CALLER, "o")
