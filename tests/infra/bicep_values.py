"""The values the Bicep reader turns source into (:mod:`tests.infra.bicep`): expressions it does
not model, interpolated strings, calls, ``for`` and ``if`` forms, and top-level declarations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Expr:
    """An expression this reader does not model, as its source text (whitespace collapsed)."""

    text: str


@dataclass(frozen=True)
class Interp:
    """An interpolated string: parts alternate literal text and expression source."""

    parts: tuple[str, ...]

    @property
    def template(self) -> str:
        out = []
        for n, part in enumerate(self.parts):
            out.append("${" + part + "}" if n % 2 else part)
        return "".join(out)


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class For:
    """``[for <variables> in <iterable>: [if (<condition>)] <body>]``."""

    variables: str
    iterable: Any
    body: Any
    condition: Expr | None = None


@dataclass(frozen=True)
class If:
    """``if (<condition>) <body>`` (a conditional resource or module)."""

    condition: Expr
    body: Any


@dataclass
class Declaration:
    keyword: str  # param, var, resource, module, output, type, targetScope, using, ...
    name: str
    line: int
    decorators: list[Call | Expr] = field(default_factory=list)
    type: str = ""  # param/output type; resource "Type@version"; module path
    value: Any = None  # default value (param), value (var/output), body (resource/module)
    has_value: bool = False
    existing: bool = False  # resource ... existing

    def decorator(self, name: str) -> Call | None:
        for d in self.decorators:
            if isinstance(d, Call) and d.name in (name, f"sys.{name}"):
                return d
        return None
