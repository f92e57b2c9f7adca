"""Bicep's tokens: comments, ``'...'`` strings with ``${}`` interpolation, ``'''`` strings,
numbers, identifiers and punctuation; unterminated strings and unbalanced brackets fail
(:mod:`tests.infra.bicep` says what the reader is for)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


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
