"""Lifespan state as typed FastAPI dependencies.

A service declares what its lifespan yields as a ``TypedDict`` and names each entry once as an
``Annotated`` alias, the vocabulary its routes speak::

    class State(TypedDict):
        deliveries: DeliveryService

    Deliveries = Annotated[DeliveryService, from_state(State, "deliveries")]

    @router.get("/{id}")
    async def get(id: str, deliveries: Deliveries) -> Delivery: ...

mypy checks that the lifespan yields a ``State``; :func:`from_state` checks, when the alias is
defined, that ``State`` declares the key, so a misspelt key fails at import rather than on a
request. The dependency is async (a sync one would cost each request a hop to the thread pool)
and returns the entry of the request's copy of the lifespan state as it is: the alias gives it
its type, and nothing narrows ``request.state`` by hand.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.params import Depends


def from_state(state: type[Any], key: str) -> Depends:
    """``Depends()`` on the lifespan state entry ``key`` of the ``TypedDict`` ``state``."""
    keys = getattr(state, "__required_keys__", frozenset()) | getattr(
        state, "__optional_keys__", frozenset()
    )
    if key not in keys:
        raise KeyError(f"{state.__qualname__} declares no {key!r}: {', '.join(sorted(keys))}")

    async def dependency(request: Request) -> Any:
        try:
            return request.scope["state"][key]
        except KeyError:
            raise RuntimeError(
                f"the lifespan state holds no {key!r}: is the app's lifespan running?"
            ) from None

    dependency.__name__ = f"state_{key}"
    dependency.__qualname__ = dependency.__name__
    return Depends(dependency=dependency)
