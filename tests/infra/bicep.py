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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BICEP_DIR = ROOT / "infra" / "bicep"


class BicepSyntaxError(ValueError):
    def __init__(self, message: str, line: int, path: str = "") -> None:
        super().__init__(f"{path}:{line}: {message}" if path else f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, istring (interpolated), number, punct, newline, eof
    text: str  # source text
    value: Any  # str for strings/idents, int for numbers, list of parts for istring
    line: int
    start: int
    end: int


# Longest first.
PUNCTUATION = (
    "...",
    "=>",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "??",
    ".?",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ":",
    ",",
    ".",
    "?",
    "!",
    "=",
    "@",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "|",
    "#",
)
OPENERS = {"{": "}", "[": "]", "(": ")"}
CONTINUATIONS = frozenset({"?", ":", "??", "&&", "||", ".", ".?"})
CLOSERS = {v: k for k, v in OPENERS.items()}
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", "$": "$"}


def _read_string(text: str, i: int, line: int) -> tuple[list[str | str], int, bool, int]:
    """Read a '...' string from text[i] == "'": (parts, end, interpolated, lines spanned).

    parts alternate literal text and interpolation source (odd indexes are expressions).
    """
    parts: list[str] = [""]
    j = i + 1
    interpolated = False
    while True:
        if j >= len(text) or text[j] == "\n":
            raise BicepSyntaxError("unterminated string", line)
        c = text[j]
        if c == "\\":
            nxt = text[j + 1 : j + 2]
            if nxt == "u":
                close = text.index("}", j)
                parts[-1] += chr(int(text[j + 3 : close], 16))
                j = close + 1
                continue
            if nxt not in ESCAPES:
                raise BicepSyntaxError(f"invalid escape \\{nxt}", line)
            parts[-1] += ESCAPES[nxt]
            j += 2
            continue
        if c == "'":
            return parts, j + 1, interpolated, 0
        if c == "$" and text[j + 1 : j + 2] == "{":
            interpolated = True
            depth = 0
            k = j + 2
            start = k
            while True:
                if k >= len(text):
                    raise BicepSyntaxError("unterminated interpolation", line)
                ch = text[k]
                if ch == "'":
                    # A string inside the interpolation: skip it.
                    _, k, _, _ = _read_string(text, k, line)
                    continue
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    if depth == 0:
                        break
                    depth -= 1
                k += 1
            parts.append(text[start:k])
            parts.append("")
            j = k + 1
            continue
        parts[-1] += c
        j += 1


def tokenize(text: str, path: str = "") -> list[Token]:
    tokens: list[Token] = []
    i = 0
    line = 1
    stack: list[tuple[str, int]] = []
    try:
        while i < len(text):
            c = text[i]
            if c == "\n":
                tokens.append(Token("newline", "\n", None, line, i, i + 1))
                line += 1
                i += 1
            elif c in " \t\r":
                i += 1
            elif text.startswith("//", i):
                end = text.find("\n", i)
                i = len(text) if end == -1 else end
            elif text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end == -1:
                    raise BicepSyntaxError("unterminated comment", line)
                line += text.count("\n", i, end)
                i = end + 2
            elif c == "#" and (
                i == 0 or text[i - 1] == "\n" or text[:i].split("\n")[-1].strip() == ""
            ):
                # #disable-next-line and other pragmas: a line of their own.
                end = text.find("\n", i)
                i = len(text) if end == -1 else end
            elif text.startswith("'''", i):
                end = text.find("'''", i + 3)
                if end == -1:
                    raise BicepSyntaxError("unterminated multi-line string", line)
                value = text[i + 3 : end]
                if value.startswith("\n"):
                    value = value[1:]
                tokens.append(Token("string", text[i : end + 3], value, line, i, end + 3))
                line += text.count("\n", i, end + 3)
                i = end + 3
            elif c == "'":
                parts, end, interpolated, _ = _read_string(text, i, line)
                if interpolated:
                    tokens.append(Token("istring", text[i:end], parts, line, i, end))
                else:
                    tokens.append(Token("string", text[i:end], parts[0], line, i, end))
                i = end
            elif c.isdigit():
                m = re.match(r"\d+", text[i:])
                assert m
                tokens.append(Token("number", m[0], int(m[0]), line, i, i + len(m[0])))
                i += len(m[0])
            elif c.isalpha() or c == "_":
                m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i:])
                assert m
                tokens.append(Token("ident", m[0], m[0], line, i, i + len(m[0])))
                i += len(m[0])
            else:
                for p in PUNCTUATION:
                    if text.startswith(p, i):
                        break
                else:
                    raise BicepSyntaxError(f"unexpected character {c!r}", line)
                if p in OPENERS:
                    stack.append((p, line))
                elif p in CLOSERS:
                    if not stack or stack[-1][0] != CLOSERS[p]:
                        raise BicepSyntaxError(f"unbalanced {p!r}", line)
                    stack.pop()
                tokens.append(Token("punct", p, p, line, i, i + len(p)))
                i += len(p)
    except BicepSyntaxError as exc:
        raise BicepSyntaxError(str(exc).split(": ", 1)[-1], exc.line, path) from None
    if stack:
        opener, opened = stack[-1]
        raise BicepSyntaxError(f"{opener!r} never closed", opened, path)
    tokens.append(Token("eof", "", None, line, len(text), len(text)))
    return tokens


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


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


class Parser:
    def __init__(self, tokens: list[Token], source: str, path: str = "") -> None:
        self.tokens = tokens
        self.source = source
        self.path = path
        self.pos = 0

    # -- token helpers -------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def error(self, message: str) -> BicepSyntaxError:
        return BicepSyntaxError(message, self.tok.line, self.path)

    def advance(self) -> Token:
        tok = self.tok
        self.pos += 1
        return tok

    def expect(self, text: str) -> Token:
        if self.tok.text != text:
            raise self.error(f"expected {text!r}, found {self.tok.text!r}")
        return self.advance()

    def skip_newlines(self) -> None:
        while self.tok.kind == "newline":
            self.pos += 1

    def next_significant(self, pos: int) -> Token:
        while self.tokens[pos].kind == "newline":
            pos += 1
        return self.tokens[pos]

    # -- statements ----------------------------------------------------------------------------

    def parse_file(self) -> list[Declaration]:
        decls: list[Declaration] = []
        decorators: list[Call | Expr] = []
        while True:
            self.skip_newlines()
            tok = self.tok
            if tok.kind == "eof":
                if decorators:
                    raise self.error("decorator without a declaration")
                return decls
            if tok.text == "@":
                self.advance()
                decorators.append(self.parse_decorator())
                continue
            if tok.kind != "ident":
                raise self.error(f"unexpected {tok.text!r} at the start of a statement")
            decl = self.parse_statement()
            decl.decorators = decorators
            decorators = []
            decls.append(decl)
            if self.tok.kind not in ("newline", "eof"):
                raise self.error(f"unexpected {self.tok.text!r} after a declaration")

    def parse_decorator(self) -> Call | Expr:
        value = self.parse_value(frozenset({"newline"}))
        if isinstance(value, Call | Expr):
            return value
        raise self.error("malformed decorator")

    def parse_statement(self) -> Declaration:
        keyword = self.advance()
        kw = keyword.text
        line = keyword.line
        if kw == "targetScope":
            self.expect("=")
            return Declaration(
                kw, kw, line, value=self.parse_value(frozenset({"newline"})), has_value=True
            )
        if kw == "using":
            path = self.advance()
            if path.kind != "string":
                raise self.error("using needs a path")
            return Declaration(kw, path.value, line, type=path.value)
        if kw in ("param", "var", "output", "metadata", "type", "func"):
            name = self.advance()
            if name.kind != "ident":
                raise self.error(f"{kw} needs a name")
            decl = Declaration(kw, name.text, line)
            if kw == "func":
                self.skip_statement()
                return decl
            if self.tok.text != "=":
                decl.type = self.read_type()
            if self.tok.text == "=":
                self.advance()
                decl.value = self.parse_value(frozenset({"newline"}))
                decl.has_value = True
            elif kw in ("var", "output", "metadata", "type"):
                raise self.error(f"{kw} {name.text} has no value")
            return decl
        if kw in ("resource", "module"):
            name = self.advance()
            if name.kind != "ident":
                raise self.error(f"{kw} needs a symbolic name")
            target = self.advance()
            if target.kind != "string":
                raise self.error(f"{kw} {name.text}: expected a quoted type or path")
            decl = Declaration(kw, name.text, line, type=target.value)
            if self.tok.text == "existing":
                self.advance()
                decl.existing = True
            self.expect("=")
            decl.value = self.parse_body()
            decl.has_value = True
            return decl
        if kw in ("import", "extension"):
            self.skip_statement()
            return Declaration(kw, kw, line)
        raise self.error(f"unknown statement {kw!r}")

    def read_type(self) -> str:
        start = self.tok.start
        end = start
        depth = 0
        while True:
            tok = self.tok
            if tok.kind == "eof" or (depth == 0 and (tok.text == "=" or tok.kind == "newline")):
                break
            if tok.text in OPENERS:
                depth += 1
            elif tok.text in CLOSERS:
                depth -= 1
            end = tok.end
            self.advance()
        return " ".join(self.source[start:end].split())

    def skip_statement(self) -> None:
        depth = 0
        while self.tok.kind != "eof" and not (depth == 0 and self.tok.kind == "newline"):
            if self.tok.text in OPENERS:
                depth += 1
            elif self.tok.text in CLOSERS:
                depth -= 1
            self.advance()

    def parse_body(self) -> Any:
        if self.tok.text == "if":
            return self.parse_if()
        return self.parse_value(frozenset({"newline"}))

    def parse_if(self) -> If:
        self.expect("if")
        self.expect("(")
        condition = self.raw_until(frozenset({")"}))
        self.expect(")")
        self.skip_newlines()
        if self.tok.text != "{":
            raise self.error("if needs an object body")
        return If(condition, self.parse_object())

    # -- values --------------------------------------------------------------------------------

    def at_end(self, terminators: frozenset[str]) -> bool:
        tok = self.tok
        if tok.kind == "eof":
            return True
        if tok.kind == "newline":
            nxt = self.next_significant(self.pos)
            if "newline" in terminators:
                # A line that starts with an operator continues the expression (multi-line
                # ternaries, as the Bicep formatter writes them).
                return nxt.text not in CONTINUATIONS
            # Inside brackets newlines separate nothing: the value ends at the terminator.
            return nxt.kind == "eof" or nxt.text in terminators
        return tok.text in terminators

    def parse_value(self, terminators: frozenset[str]) -> Any:
        """A value ending before a terminator (a token text, or "newline") at nesting depth 0."""
        if "newline" not in terminators:
            self.skip_newlines()
        start_pos = self.pos
        tok = self.tok
        value: Any
        simple = True
        if tok.text == "{":
            value = self.parse_object()
        elif tok.text == "[":
            value = self.parse_array()
        elif tok.kind == "string":
            self.advance()
            value = tok.value
        elif tok.kind == "istring":
            self.advance()
            value = Interp(tuple(tok.value))
        elif tok.kind == "number":
            self.advance()
            value = tok.value
        elif tok.kind == "ident" and tok.text in ("true", "false", "null"):
            self.advance()
            value = {"true": True, "false": False, "null": None}[tok.text]
        elif tok.kind == "ident" and self.peek().text == "(":
            value = self.parse_call()
        elif (
            tok.kind == "ident"
            and self.peek().text == "."
            and self.peek(2).kind == "ident"
            and self.peek(3).text == "("
        ):
            # Namespaced call: sys.description(...), az.getSecret(...).
            ns = self.advance().text
            self.advance()
            call = self.parse_call()
            value = Call(f"{ns}.{call.name}", call.args)
        else:
            simple = False
            value = None
        if simple and self.at_end(terminators):
            return value
        # Something more (an operator, property access, ...): the whole thing is an expression.
        self.pos = start_pos
        return self.raw_until(terminators)

    def raw_until(self, terminators: frozenset[str]) -> Expr:
        start = self.tok.start
        end = start
        depth = 0
        while True:
            if depth == 0 and self.at_end(terminators):
                break
            tok = self.tok
            if tok.kind == "eof":
                raise self.error("unexpected end of file in an expression")
            if tok.text in OPENERS:
                depth += 1
            elif tok.text in CLOSERS:
                if depth == 0:
                    raise self.error(f"unexpected {tok.text!r}")
                depth -= 1
            end = tok.end
            self.advance()
        text = " ".join(self.source[start:end].split())
        if not text:
            raise self.error("missing value")
        return Expr(text)

    def parse_call(self) -> Call:
        name = self.advance().text
        self.expect("(")
        args: list[Any] = []
        self.skip_newlines()
        while self.tok.text != ")":
            if (self.tok.kind == "ident" and self.peek().text == "=>") or (
                self.tok.text == "(" and self.is_lambda()
            ):
                args.append(self.raw_until(frozenset({",", ")"})))
            else:
                args.append(self.parse_value(frozenset({",", ")"})))
            self.skip_newlines()
            if self.tok.text == ",":
                self.advance()
                self.skip_newlines()
            elif self.tok.text != ")":
                raise self.error(f"expected ',' or ')' in {name}(), found {self.tok.text!r}")
        self.expect(")")
        return Call(name, tuple(args))

    def is_lambda(self) -> bool:
        depth = 0
        pos = self.pos
        while True:
            text = self.tokens[pos].text
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
                if depth == 0:
                    return self.tokens[pos + 1].text == "=>"
            elif self.tokens[pos].kind == "eof":
                return False
            pos += 1

    def parse_object(self) -> dict[str, Any]:
        self.expect("{")
        result: dict[str, Any] = {}
        while True:
            self.skip_newlines()
            if self.tok.text == "}":
                self.advance()
                return result
            if self.tok.text == "@":
                raise self.error("decorators inside objects are not supported by this reader")
            key_tok = self.advance()
            if key_tok.kind == "ident":
                key = key_tok.text
                if key in ("resource",) and self.tok.kind == "ident":
                    raise self.error("nested resources are not supported by this reader")
            elif key_tok.kind == "string":
                key = key_tok.value
            elif key_tok.kind == "istring":
                # A computed key, e.g. '${identity.id}': kept as its template.
                key = Interp(tuple(key_tok.value)).template
            else:
                raise self.error(f"expected a property name, found {key_tok.text!r}")
            if key in result:
                raise BicepSyntaxError(f"duplicate property {key!r}", key_tok.line, self.path)
            self.expect(":")
            result[key] = self.parse_value(frozenset({"newline", ",", "}"}))
            if self.tok.text == ",":
                self.advance()
            elif self.tok.text != "}" and self.tok.kind != "newline":
                raise self.error(f"unexpected {self.tok.text!r} after property {key!r}")

    def parse_array(self) -> Any:
        self.expect("[")
        self.skip_newlines()
        if self.tok.text == "for":
            return self.parse_for()
        items: list[Any] = []
        while True:
            self.skip_newlines()
            if self.tok.text == "]":
                self.advance()
                return items
            items.append(self.parse_value(frozenset({"newline", ",", "]"})))
            if self.tok.text == ",":
                self.advance()
            elif self.tok.text != "]" and self.tok.kind != "newline":
                raise self.error(f"unexpected {self.tok.text!r} in an array")

    def parse_for(self) -> For:
        self.expect("for")
        start = self.tok.start
        while self.tok.text != "in":
            if self.tok.kind in ("eof", "newline"):
                raise self.error("for without in")
            end = self.advance().end
        variables = " ".join(self.source[start:end].split())
        self.expect("in")
        iterable = self.parse_value(frozenset({":"}))
        self.expect(":")
        self.skip_newlines()
        condition = None
        if self.tok.text == "if":
            self.advance()
            self.expect("(")
            condition = self.raw_until(frozenset({")"}))
            self.expect(")")
            self.skip_newlines()
        body = self.parse_value(frozenset({"newline", "]"}))
        self.skip_newlines()
        self.expect("]")
        return For(variables, iterable, body, condition)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


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
