"""Sign in and out.

- Development (``WEBAPP_SIGNIN__MODE=development``): a form picks an account, a user and the
  Operator role; the app mints the customer token with the development issuer's key.
- Microsoft Entra ID (``entra``): ``/signin/entra`` starts the authorization code flow with PKCE
  (:mod:`webapp.entra`), Entra redirects back to ``/signin/callback``.

A successful sign-in renews the session id (the id a visitor had before signing in stops
working) and keeps the token in the server-side session; the browser only ever holds the cookie.
Signing out ends the session (and, with Entra, goes through Entra's sign-out).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from .entra import SignInFailedError
from .identity import user_from_token
from .sessions import current_session, set_session
from .web import (
    DevSignInDep,
    EntraDep,
    Sessions,
    Settings,
    ensure_session,
    read_form,
    render,
    safe_next,
)

router = APIRouter(include_in_schema=False)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
CALLBACK = "/signin/callback"


@router.get("/signin")
async def signin_page(
    request: Request,
    store: Sessions,
    settings: Settings,
    next_: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    await ensure_session(request, store)
    return render(
        request,
        "signin.html",
        {
            "next": safe_next(next_),
            "accounts": settings.signin.accounts,
            "values": {"account": settings.signin.accounts[0], "user": "", "operator": False},
            "errors": {},
        },
    )


@router.post("/signin")
async def signin(
    request: Request, store: Sessions, settings: Settings, dev: DevSignInDep
) -> Response:
    form = await read_form(request, current_session(request))
    target = safe_next(form.get("next"))
    if dev is None:
        return RedirectResponse(f"/signin/entra?next={target}", status_code=303)
    account = form.get("account", "").strip()
    user = form.get("user", "").strip()
    operator = form.get("operator") == "on"
    errors: dict[str, str] = {}
    for field, value in (("account", account), ("user", user)):
        if not NAME.match(value):
            errors[field] = "Use 1 to 64 letters, digits, dots, dashes, underscores or @."
    if errors:
        values = {"account": account, "user": user, "operator": operator}
        context = {
            "next": target,
            "accounts": settings.signin.accounts,
            "values": values,
            "errors": errors,
        }
        return render(request, "signin.html", context, status=400)
    token = dev.mint(account=account, user=user, operator=operator)
    return await _signed_in(request, store, token, None, target)


async def _signed_in(
    request: Request, store: Sessions, token: str, cache: str | None, target: str
) -> Response:
    session = await ensure_session(request, store)
    session.data.user, session.data.token_expires_at = user_from_token(token)
    session.data.token = token
    session.data.token_cache = cache
    session.data.auth_flow = None
    session.data.notices = [f"Signed in as {session.data.user.name} ({session.data.user.account})."]
    renewed = await store.renew(session)
    set_session(request, renewed)
    return RedirectResponse(target, status_code=303)


@router.get("/signin/entra")
async def entra_begin(
    request: Request,
    store: Sessions,
    entra: EntraDep,
    next_: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    if entra is None:
        return RedirectResponse("/signin", status_code=303)
    session = await ensure_session(request, store)
    flow = await entra.begin(str(request.url_for("entra_callback")))
    flow["next"] = safe_next(next_)
    session.data.auth_flow = flow
    await store.save(session)
    return RedirectResponse(str(flow["auth_uri"]), status_code=303)


@router.get(CALLBACK, name="entra_callback")
async def entra_callback(request: Request, store: Sessions, entra: EntraDep) -> Response:
    session = current_session(request)
    flow = session.data.auth_flow if session is not None else None
    if entra is None or session is None or flow is None:
        return render(
            request,
            "error.html",
            {"title": "Sign-in failed", "detail": "No sign-in was in progress: start again."},
            status=400,
        )
    target = safe_next(str(flow.get("next", "")))
    try:
        token, cache = await entra.complete(
            flow, dict(request.query_params), session.data.token_cache
        )
        return await _signed_in(request, store, token, cache, target)
    except (SignInFailedError, ValueError) as exc:
        session.data.auth_flow = None
        await store.save(session)
        return render(
            request, "error.html", {"title": "Sign-in failed", "detail": str(exc)}, status=400
        )


@router.post("/signout")
async def signout(request: Request, store: Sessions, entra: EntraDep) -> Response:
    session = current_session(request)
    await read_form(request, session)
    assert session is not None  # read_form refuses a request without one
    await store.end(session)
    if entra is not None:
        return RedirectResponse(entra.logout_url(str(request.url_for("home"))), status_code=303)
    return RedirectResponse("/?signedout=1", status_code=303)
