"""Sessions: a signed cookie in the browser, the session itself in Redis.

The cookie holds only the session id (32 random bytes), signed with ``itsdangerous`` so a forged
or altered cookie is ignored without a Redis read; it is ``HttpOnly``, ``SameSite=Lax``, and
``Secure`` on https. The session (who signed in, their access token, the CSRF token, a sign-in
in progress) is one JSON value in Redis, ``<prefix>:session:<id>``, that expires after
``idle_seconds`` without a request and never outlives ``max_age_seconds``.

:class:`SessionMiddleware` (pure ASGI) reads the cookie into ``scope["session"]`` and writes it
back on the response when a route started, renewed or ended a session. Signing in renews the id
(no session fixation); signing out deletes the session and the cookie.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from itsdangerous import BadSignature, Signer
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import SessionSettings


class User(BaseModel):
    """Who signed in: the account and user the token names, and its roles."""

    account: str
    user: str
    name: str
    roles: list[str] = Field(default_factory=list)

    def has_role(self, role: str) -> bool:
        return role in self.roles


class SessionData(BaseModel):
    csrf: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    created_at: float = Field(default_factory=time.time)
    user: User | None = None
    # The access token for the public API and when it expires (epoch seconds).
    token: str | None = None
    token_expires_at: float = 0.0
    # Microsoft Entra: the authorization code flow in progress, and MSAL's token cache.
    auth_flow: dict[str, Any] | None = None
    token_cache: str | None = None
    # One-time messages for the next page ("Signed in as ...").
    notices: list[str] = Field(default_factory=list)
    # Deliveries scheduled here that the delivery service may not show yet (newest last).
    pending: list[str] = Field(default_factory=list)


@dataclass
class Session:
    """The request's session: its id, its data, and what the response must do with the cookie."""

    id: str
    data: SessionData
    fresh: bool = False  # started by this request: the cookie must be set
    ended: bool = False  # signed out: the cookie must go

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, self.data.csrf)


class SessionStore:
    """Sessions in Redis, and the cookie's signature."""

    def __init__(self, redis: Redis, settings: SessionSettings, secret: str) -> None:
        self.redis = redis
        self.settings = settings
        self._signer = Signer(secret, salt="dronedelivery-session")

    def _key(self, session_id: str) -> str:
        return f"{self.settings.key_prefix}:session:{session_id}"

    def sign(self, session_id: str) -> str:
        return self._signer.sign(session_id).decode("ascii")

    def unsign(self, cookie: str) -> str | None:
        try:
            return self._signer.unsign(cookie).decode("ascii")
        except (BadSignature, UnicodeError):
            return None

    def _ttl(self, data: SessionData) -> int:
        left = data.created_at + self.settings.max_age_seconds - time.time()
        return max(1, int(min(self.settings.idle_seconds, left)))

    async def load(self, session_id: str) -> Session | None:
        raw = await self.redis.get(self._key(session_id))
        if raw is None:
            return None
        data = SessionData.model_validate_json(raw)
        if time.time() >= data.created_at + self.settings.max_age_seconds:
            await self.redis.delete(self._key(session_id))
            return None
        # Sliding expiry: every request keeps an active session alive.
        await self.redis.expire(self._key(session_id), self._ttl(data))
        return Session(session_id, data)

    async def save(self, session: Session) -> None:
        await self.redis.set(
            self._key(session.id), session.data.model_dump_json(), ex=self._ttl(session.data)
        )

    def start(self) -> Session:
        """A new, empty session (saved by the caller)."""
        return Session(secrets.token_urlsafe(32), SessionData(), fresh=True)

    async def renew(self, session: Session) -> Session:
        """The same data under a new id (at sign-in); the old id stops working."""
        await self.redis.delete(self._key(session.id))
        renewed = Session(secrets.token_urlsafe(32), session.data, fresh=True)
        renewed.data.csrf = secrets.token_urlsafe(32)
        renewed.data.created_at = time.time()
        await self.save(renewed)
        return renewed

    async def end(self, session: Session) -> None:
        await self.redis.delete(self._key(session.id))
        session.ended = True

    def cookie_header(self, session: Session, *, secure: bool) -> bytes:
        cookie: SimpleCookie = SimpleCookie()
        name = self.settings.cookie_name
        cookie[name] = "" if session.ended else self.sign(session.id)
        morsel = cookie[name]
        morsel["path"] = "/"
        morsel["httponly"] = True
        morsel["samesite"] = "Lax"
        morsel["max-age"] = 0 if session.ended else self.settings.max_age_seconds
        if secure:
            morsel["secure"] = True
        return morsel.OutputString().encode("latin-1")


def current_session(connection: HTTPConnection) -> Session | None:
    found = connection.scope.get("session_state")
    return found if isinstance(found, Session) else None


def set_session(connection: HTTPConnection, session: Session) -> None:
    connection.scope["session_state"] = session


class SessionMiddleware:
    """Reads the session cookie before the app and sets or clears it on the response."""

    def __init__(self, app: ASGIApp, *, cookie_name: str, secure: bool | None) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        store = scope.get("state", {}).get("sessions")
        if not isinstance(store, SessionStore):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        cookie = connection.cookies.get(self.cookie_name)
        session_id = store.unsign(cookie) if cookie else None
        if session_id is not None:
            session = await store.load(session_id)
            if session is not None:
                scope["session_state"] = session
        secure = self.secure if self.secure is not None else scope.get("scheme") == "https"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                session = scope.get("session_state")
                if isinstance(session, Session) and (session.fresh or session.ended):
                    headers = list(message.get("headers", []))
                    headers.append((b"set-cookie", store.cookie_header(session, secure=secure)))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookie)
