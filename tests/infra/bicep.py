"""A small reader for the Bicep files of infra/bicep, for offline structural tests.

No Bicep compiler can be installed here (the CLI is a .NET program distributed only as release
binaries; the PyPI and npm packages that wrap it download those binaries at run time), so the tests
read the source themselves. This module:

* tokenizes Bicep (comments, ``'...'`` strings with ``${}`` interpolation, ``'''`` strings, numbers,
  identifiers, punctuation) and fails on unterminated strings and unbalanced brackets;
* parses the top-level statements (``targetScope``, ``param``, ``var``, ``resource``, ``module``,
  ``output``, ``type``, ``import``, ``using``, ``metadata``, ``func``) with their decorators;
* turns literal values into Python values: objects -> ``dict``, arrays -> ``list``, plain
  strings -> ``str``, ``true``/``false``/``null``/numbers; a single function call -> :class:`Call`
  with parsed arguments; ``[for ...]`` -> :class:`For`; ``if (...) {...}`` -> :class:`If`; an
  interpolated string -> :class:`Interp`; anything else (operators, property access, lambdas...)
  -> :class:`Expr` with its source text.

It is not a compiler: it does not type-check, resolve symbols or know the resource schemas. The
checks built on it (tests/infra/test_bicep_*.py) say what they cover.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bicep_parser import Parser
from .bicep_tokens import BicepSyntaxError, tokenize
from .bicep_values import Call, Declaration, Expr, For, If, Interp

__all__ = [
    "BICEP_DIR",
    "ROOT",
    "BicepFile",
    "BicepSyntaxError",
    "Call",
    "Declaration",
    "Expr",
    "For",
    "If",
    "Interp",
    "body_of",
    "dig",
    "interpolate",
    "is_expr",
    "load",
    "parse",
]

ROOT = Path(__file__).resolve().parents[2]
BICEP_DIR = ROOT / "infra" / "bicep"


@dataclass
class BicepFile:
    path: Path
    source: str
    declarations: list[Declaration]

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(ROOT))

    def of(self, keyword: str) -> list[Declaration]:
        return [d for d in self.declarations if d.keyword == keyword]

    def get(self, keyword: str, name: str) -> Declaration:
        found = [d for d in self.of(keyword) if d.name == name]
        assert len(found) == 1, f"{self.rel}: {keyword} {name}: {len(found)} found"
        return found[0]

    @property
    def params(self) -> dict[str, Declaration]:
        return {d.name: d for d in self.of("param")}

    @property
    def variables(self) -> dict[str, Declaration]:
        return {d.name: d for d in self.of("var")}

    @property
    def outputs(self) -> dict[str, Declaration]:
        return {d.name: d for d in self.of("output")}

    def resources(self, type_name: str | None = None) -> list[Declaration]:
        return [
            d
            for d in self.of("resource")
            if type_name is None or d.type.split("@")[0].lower() == type_name.lower()
        ]

    def resource(self, type_name: str) -> Declaration:
        found = self.resources(type_name)
        assert len(found) == 1, f"{self.rel}: {len(found)} resources of type {type_name}"
        return found[0]

    def identifiers(self) -> list[str]:
        """Every identifier token, interpolations included (for "is it used" checks)."""
        names: list[str] = []
        for tok in tokenize(self.source, self.rel):
            if tok.kind == "ident":
                names.append(tok.text)
            elif tok.kind == "istring":
                for n, part in enumerate(tok.value):
                    if n % 2:
                        names.extend(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", part))
        return names


def parse(source: str, path: Path | None = None) -> BicepFile:
    name = str(path.relative_to(ROOT)) if path and path.is_relative_to(ROOT) else str(path or "")
    tokens = tokenize(source, name)
    declarations = Parser(tokens, source, name).parse_file()
    return BicepFile(path or Path("<string>"), source, declarations)


def load(path: Path) -> BicepFile:
    return parse(path.read_text(encoding="utf-8"), path)


def body_of(decl: Declaration) -> dict[str, Any]:
    """The object body of a resource or module, through ``if`` and ``for``."""
    value = decl.value
    if isinstance(value, For):
        value = value.body
    if isinstance(value, If):
        value = value.body
    assert isinstance(value, dict), f"{decl.keyword} {decl.name}: body is not an object literal"
    return value


def dig(value: Any, *keys: str) -> Any:
    """value[k1][k2]...; KeyError names the missing path."""
    for n, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise KeyError(".".join(keys[: n + 1]))
        value = value[key]
    return value


def is_expr(value: Any, text: str) -> bool:
    return isinstance(value, Expr) and value.text == text


def interpolate(value: Any, scope: dict[str, Any]) -> Any:
    """Evaluate a literal, an identifier, a.b property path or a simple interpolated string."""
    if isinstance(value, Interp):
        out = []
        for n, part in enumerate(value.parts):
            out.append(str(interpolate(Expr(part.strip()), scope)) if n % 2 else part)
        return "".join(out)
    if isinstance(value, Expr):
        call = re.fullmatch(r"replace\((\w+), '([^']*)', '([^']*)'\)", value.text)
        if call:
            return str(interpolate(Expr(call[1]), scope)).replace(call[2], call[3])
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", value.text):
            raise ValueError(f"not a simple reference: {value.text}")
        head, *rest = value.text.split(".")
        if head not in scope:
            raise KeyError(head)
        result = scope[head]
        for key in rest:
            result = result[key]
        return interpolate(result, scope) if isinstance(result, Expr | Interp) else result
    return value
