"""The parser of the Bicep reader (:mod:`tests.infra.bicep`): top-level statements with their
decorators, literal values as Python values, the rest as :class:`Expr` source text."""

from __future__ import annotations

from typing import Any

from .bicep_tokens import CLOSERS, CONTINUATIONS, OPENERS, BicepSyntaxError, Token
from .bicep_values import Call, Declaration, Expr, For, If, Interp


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
