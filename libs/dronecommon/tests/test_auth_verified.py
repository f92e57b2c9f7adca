"""Verified tokens remembered (``dronecommon.auth.verified``): the same token is verified once,
until it expires or the signing keys change; nothing else is ever taken from memory.

Real tokens from the development issuer, the real authenticator and its JWKS file.
"""

from __future__ import annotations

import asyncio

import jwt
import pytest

from dronecommon.auth import DevIssuer
from dronecommon.auth.errors import AuthenticationError
from dronecommon.auth.inbound import Authenticator
from dronecommon.auth.verified import VerifiedTokens
from dronetesting.clocks import FakeClock
from dronetesting.tokens import LocalIssuer


async def test_a_token_is_verified_once_then_answered_from_memory(
    dev_issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    authenticator = Authenticator(dev_issuer.settings)
    token = dev_issuer.mint(oid="o-1", roles=["Writer"])
    first = await authenticator.authenticate(token)

    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(*args: object, **kwargs: object) -> object:
        decoded.append("decode")
        return real_decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting_decode)
    for _ in range(5):
        assert await authenticator.authenticate(token) is first
    assert decoded == []
    assert authenticator.verified.hits == 5
    assert (first.object_id, first.roles) == ("o-1", ("Writer",))

    # Another token (another signature) is verified in full.
    await authenticator.authenticate(dev_issuer.mint(oid="o-2"))
    assert decoded == ["decode"]


async def test_a_remembered_token_still_expires(dev_issuer: LocalIssuer) -> None:
    authenticator = Authenticator(dev_issuer.settings_with(leeway_seconds=0))
    # exp is a whole second: a 1 s token may have milliseconds left when minted, so 3 s.
    token = dev_issuer.mint(lifetime=3)
    await authenticator.authenticate(token)
    assert len(authenticator.verified) == 1
    await asyncio.sleep(3.2)
    with pytest.raises(AuthenticationError, match="expired"):
        await authenticator.authenticate(token)
    assert len(authenticator.verified) == 0


async def test_refused_tokens_are_never_remembered(dev_issuer: LocalIssuer) -> None:
    authenticator = Authenticator(dev_issuer.settings)
    stranger = DevIssuer.generate(dev_issuer.issuer.issuer)
    forged = stranger.mint(audience=dev_issuer.audience, kid=dev_issuer.issuer.kid)
    for _ in range(2):
        with pytest.raises(AuthenticationError, match="signature is not valid"):
            await authenticator.authenticate(forged)
    tampered = dev_issuer.mint()
    await authenticator.authenticate(tampered)
    head, payload, signature = tampered.split(".")
    with pytest.raises(AuthenticationError):
        await authenticator.authenticate(f"{head}.{payload}.{signature[:-4]}AAAA")
    assert len(authenticator.verified) == 1


async def test_tokens_are_verified_again_when_the_keys_are_refreshed(
    dev_issuer: LocalIssuer,
) -> None:
    """A key withdrawn from the JWKS stops its tokens at the next refresh of the keys."""
    clock = FakeClock()
    authenticator = Authenticator(dev_issuer.settings_with(jwks_cache_seconds=60), clock=clock)
    token = dev_issuer.mint()
    first = await authenticator.authenticate(token)
    assert await authenticator.authenticate(token) is first
    assert authenticator.verified.hits == 1

    dev_issuer.issuer.rotate(keep_previous=False)
    dev_issuer.issuer.save(dev_issuer.directory)
    clock.now += 30  # keys still fresh: the token is still answered from memory
    assert await authenticator.authenticate(token) is first
    assert authenticator.verified.hits == 2
    clock.now += 31  # due for a refresh: verified again, against the new keys only
    with pytest.raises(AuthenticationError, match="not one of the issuer's keys"):
        await authenticator.authenticate(token)
    assert authenticator.verified.hits == 2


def test_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    clock = FakeClock()
    keys = object()
    memory: VerifiedTokens[str] = VerifiedTokens(size=3, wall_clock=clock)
    for n in range(4):
        memory.put(f"t{n}", f"caller {n}", clock.now + 60, keys)
    assert len(memory) == 3
    assert memory.get("t0", keys) is None
    assert memory.get("t3", keys) == "caller 3"
    # Without an expiry, already expired, or without fresh keys: not remembered.
    memory.put("no-exp", "c", None, keys)
    memory.put("expired", "c", clock.now - 1, keys)
    memory.put("no-keys", "c", clock.now + 60, None)
    assert all(memory.get(t, keys) is None for t in ("no-exp", "expired", "no-keys"))
    # Another key set: verified again.
    assert memory.get("t3", object()) is None
