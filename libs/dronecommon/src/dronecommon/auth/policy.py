"""Route policies: which callers a route admits, once the token itself is valid.

The app factory authenticates every protected router (:mod:`.inbound`: 401 without a valid
token); each route then says whom it serves with :func:`requires`::

    Writer = Annotated[Caller, requires("Deliveries.Write")]                 # services only
    Customer = Annotated[Caller, requires(customers=True)]                    # customers only
    Reader = Annotated[Caller, requires("Deliveries.Write", customers=True)]  # either

- a **service** token (this service's own audience) is admitted when it holds one of the app
  ``roles`` the route names (Entra app role assignments); a route naming none admits no service;
- a **customer** token (the public API's audience) is admitted only where ``customers`` is true,
  and only when it names an account and a user (``AuthSettings.account_claim``/``user_claim``);
  on any other route it is 403: customer tokens never reach internal routes;
- with tokens switched off (``AuthSettings.enabled=false``) the anonymous caller is admitted
  everywhere and sees everything.

Whether a customer may see a *particular* delivery is the route's business, with
:meth:`~dronecommon.auth.inbound.Caller.may_access` (owner or operator; else 404 so that existence
is not revealed).

Fails closed: a route with a policy but no authentication dependency (a router registered as
public by mistake) answers 500 rather than admitting anyone.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam

from dronecommon.auth.errors import PermissionDeniedError, http_error
from dronecommon.auth.inbound import Caller, stored_caller


def refuse(detail: str) -> Exception:
    """The 403 (``insufficient_scope``) answer with ``detail``."""
    return http_error(PermissionDeniedError(detail), token_sent=True)


def admit(caller: Caller, roles: tuple[str, ...], *, customers: bool) -> Caller:
    """``caller`` if the policy ``(roles, customers)`` admits it, else the 403 to raise."""
    if caller.kind == "anonymous":
        return caller
    if caller.kind == "customer":
        if not customers:
            raise refuse("a customer token cannot call this route: it is for the system's services")
        if caller.account_id is None or caller.user_id is None:
            raise refuse("the token names no account or no user (see the account and user claims)")
        return caller
    if not roles:
        raise refuse("this route is for customers: a service token cannot call it")
    if not any(caller.has_role(role) for role in roles):
        raise refuse("the token holds none of the roles this route requires: " + ", ".join(roles))
    return caller


def requires(*roles: str, customers: bool = False) -> DependsParam:
    """The dependency admitting service callers with one of ``roles`` and, when ``customers``
    is true, customers; it returns the :class:`Caller`."""

    # The stored caller is read here rather than through CurrentCaller: a dependency fewer to
    # solve on every protected request.
    async def policy(request: Request) -> Caller:
        return admit(stored_caller(request), roles, customers=customers)

    names = [*roles, *(["customer"] if customers else [])]
    policy.__name__ = "requires_" + "_or_".join(names).replace(".", "_")
    dependency: DependsParam = Depends(policy)
    return dependency
