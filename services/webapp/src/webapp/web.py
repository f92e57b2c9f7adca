"""What every page route shares: templates, the session and the user, tokens, forms and CSRF.

Pages are server-rendered (Jinja2, autoescaped): each shows its data before any script runs.
Scripts are ES modules served from ``/static`` (no inline script: the CSP forbids it); data they
need rides in the page as JSON in ``<script type="application/json">`` blocks, which are never
executed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

import jinja2
from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from dronecommon.auth.roles import OPERATOR
from dronecommon.state import from_state

from .backends import Backends
from .entra import EntraSignIn
from .errors import BadForm, SignInRequired
from .identity import DevSignIn, user_from_token
from .ops import Throughput
from .runtime import State
from .sessions import Session, SessionStore, User, current_session, set_session
from .settings import WebappSettings
from .streams import StreamProxy

PACKAGE = files("webapp")
STATIC_DIR = Path(str(PACKAGE / "static"))
TEMPLATES_DIR = Path(str(PACKAGE / "templates"))
FORM_TYPE = "application/x-www-form-urlencoded"
# A token this close to its expiry is renewed before a call.
RENEW_MARGIN = 120.0

Settings = Annotated[WebappSettings, from_state(State, "settings")]
Sessions = Annotated[SessionStore, from_state(State, "sessions")]
Services = Annotated[Backends, from_state(State, "backends")]
DevSignInDep = Annotated[DevSignIn | None, from_state(State, "dev_signin")]
EntraDep = Annotated[EntraSignIn | None, from_state(State, "entra")]
Streams = Annotated[StreamProxy, from_state(State, "streams")]
Rates = Annotated[Throughput, from_state(State, "throughput")]


@cache
def asset_version(name: str) -> str:
    """A short digest of a static file, so a changed file gets a new URL (cache busting)."""
    path = STATIC_DIR / name
    if not path.is_file():
        return "missing"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    return f"/static/{name}?v={asset_version(name)}"


def has_asset(name: str) -> bool:
    return (STATIC_DIR / name).is_file()


def _parse(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def when(value: Any) -> str:
    """``2030-05-08T20:25:00Z`` → ``Wed 8 May, 20:25:00 UTC`` (the scripts show local time)."""
    parsed = _parse(value)
    if parsed is None:
        return "—"
    utc = parsed.astimezone(dt.UTC)
    return f"{utc:%a} {utc.day} {utc:%b}, {utc:%H:%M:%S} UTC"


#: What a person reads for the API's stage and phase names (the pages keep the API's name in
#: ``data-stage`` / ``data-phase`` and in class names). Every page carries it for its scripts
#: (``#labels``, read by common.js's ``label``).
LABELS = {
    "Created": "Created",
    "Rescheduled": "Rescheduled",
    "HeadedToPickup": "Headed to pickup",
    "HeadedToDropoff": "Headed to drop-off",
    "Completed": "Completed",
    "Cancelled": "Cancelled",
    "ToPickup": "flying to the pickup",
    "AtPickup": "at the pickup",
    "ToDropoff": "flying to the drop-off",
    "AtDropoff": "at the drop-off",
    "Returning": "flying home",
}


def label(value: Any) -> str:
    """``HeadedToPickup`` -> ``Headed to pickup``; a name not in :data:`LABELS` as it is."""
    text = "" if value is None else str(value)
    return LABELS.get(text, text)


def until(value: Any, now: Any = None) -> str:
    """How long until ``value``: ``in 4 min 05 s``, ``2 min ago``."""
    parsed = _parse(value)
    if parsed is None:
        return ""
    reference = _parse(now) or dt.datetime.now(dt.UTC)
    seconds = int((parsed - reference).total_seconds())
    span = abs(seconds)
    hours, rest = divmod(span, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


# Autoescaping on for every template, whatever its name.
templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
)
templates.env.globals.update(static_url=static_url, has_asset=has_asset, labels=LABELS)
templates.env.filters.update(when=when, until=until, label=label)


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    session = current_session(request)
    settings: WebappSettings = request.state.settings
    values: dict[str, Any] = {
        "user": session.data.user if session else None,
        "csrf": session.data.csrf if session else "",
        "operator": bool(session and session.data.user and session.data.user.has_role(OPERATOR)),
        "signin_mode": settings.signin.mode,
        "path": request.url.path,
        "notices": [],
    }
    if session is not None and session.data.notices:
        values["notices"] = session.data.notices
        session.data.notices = []
    values.update(context or {})
    response = templates.TemplateResponse(request, template, values, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def save_notices(request: Request, store: SessionStore) -> None:
    """Persist a session whose notices were just shown."""
    session = current_session(request)
    if session is not None and not session.fresh:
        await store.save(session)


async def ensure_session(request: Request, store: SessionStore) -> Session:
    """The request's session, started (and saved) if there is none."""
    session = current_session(request)
    if session is None:
        session = store.start()
        await store.save(session)
        set_session(request, session)
    return session


def safe_next(target: str | None, default: str = "/deliveries") -> str:
    """A local path to go back to (never another site: ``//host`` and ``\\`` are refused)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target


def signin_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


async def read_form(request: Request, session: Session | None) -> dict[str, str]:
    """The urlencoded form of a POST, after its CSRF token is checked against the session."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM_TYPE:
        raise BadForm(f"forms are {FORM_TYPE}")
    body = (await request.body()).decode("utf-8", errors="replace")
    form = dict(parse_qsl(body, keep_blank_values=True, max_num_fields=64))
    if session is None or not session.csrf_ok(form.get("csrf_token")):
        raise BadForm("the form is stale or did not come from this site: reload the page")
    return form


async def token_for(
    session: Session, store: SessionStore, dev: DevSignIn | None, entra: EntraSignIn | None
) -> str | None:
    """The user's access token, renewed near its expiry (None: sign in again)."""
    data = session.data
    if data.user is None or data.token is None:
        return None
    if time.time() < data.token_expires_at - RENEW_MARGIN:
        return data.token
    renewed: str | None = None
    if dev is not None:
        renewed = dev.mint(
            account=data.user.account,
            user=data.user.user,
            operator=data.user.has_role(OPERATOR),
        )
    elif entra is not None and data.token_cache:
        fresh = await entra.refresh(data.token_cache)
        if fresh is not None:
            renewed, data.token_cache = fresh
    if renewed is None:
        return None
    data.user, data.token_expires_at = user_from_token(renewed)
    data.token = renewed
    await store.save(session)
    return renewed


class SignedIn:
    """The signed-in user of a request: their session, who they are and a valid token."""

    def __init__(self, session: Session, user: User, token: str) -> None:
        self.session = session
        self.user = user
        self.token = token

    @property
    def operator(self) -> bool:
        return self.user.has_role(OPERATOR)


async def signed_in(
    request: Request, store: Sessions, dev: DevSignInDep, entra: EntraDep
) -> SignedIn:
    session = current_session(request)
    if session is None or session.data.user is None:
        raise SignInRequired("Sign in to see this page.")
    token = await token_for(session, store, dev, entra)
    if token is None or session.data.user is None:
        raise SignInRequired("Your sign-in has expired: sign in again.")
    return SignedIn(session, session.data.user, token)


Customer = Annotated[SignedIn, Depends(signed_in)]
