"""Tokenizer of the IoT Hub query language. Pure: text in, tokens (with their offsets) out.

Tokens: keywords (case-insensitive), names (``deviceId``, ``[[group]]`` for a name that is a
keyword or has odd characters), strings in single or double quotes with the escapes the reference
allows (``\\'`` ``\\"`` ``\\\\`` ``\\uXXXX``, and SQL's doubled quote), decimal and ``0x`` hex
numbers, operators. Every token keeps its offset so an error can say where the query went wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

KEYWORDS = frozenset({"select", "top", "from", "where", "group", "by", "as", "and", "or", "not",
                      "in", "nin", "true", "false", "null", "undefined"})
# Longest first: "<=" must win over "<".
OPERATORS = ("<=", ">=", "!=", "<>", "=", "<", ">", "(", ")", "[", "]", ",", ".", "*", "+", "-",
             "/", "%")

_SPACE = re.compile(r"\s+")
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
            "t": "\t"}


class QueryError(ValueError):
    """A query the hub cannot parse or run; answered with 400 (``SqlQueryInvalid``).

    ``position`` is the 0-based offset of the offending character (None when the error is not
    tied to one place); the message then says ``line L, column C`` (both 1-based).
    """

    def __init__(self, message: str, position: int | None = None, text: str | None = None) -> None:
        self.position = position
        self.line = self.column = None
        if position is not None and text is not None:
            before = text[:position]
            self.line = before.count("\n") + 1
            self.column = position - (before.rfind("\n") + 1) + 1
            message = f"{message} (line {self.line}, column {self.column})"
        super().__init__(message)


@dataclass(frozen=True)
class Token:
    kind: str  # "kw", "name", "num", "str", "op", "end"
    value: Any
    pos: int

    def describe(self) -> str:
        if self.kind == "end":
            return "end of query"
        if self.kind == "str":
            return f"string {self.value!r}"
        return repr(str(self.value).upper() if self.kind == "kw" else self.value)


def _string(text: str, pos: int) -> tuple[str, int]:
    """Read the quoted string at ``pos``; return (value, offset after the closing quote)."""
    quote = text[pos]
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            if text.startswith(quote, i + 1):  # SQL style doubled quote
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        if ch == "\\":
            nxt = text[i + 1:i + 2]
            if nxt == "u":
                digits = text[i + 2:i + 6]
                if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise QueryError("bad \\u escape in string", i, text)
                out.append(chr(int(digits, 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise QueryError(f"unknown escape \\{nxt} in string", i, text)
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise QueryError("unterminated string", pos, text)


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text``, ending with an ``end`` token. Raises :class:`QueryError`."""
    out: list[Token] = []
    pos = 0
    n = len(text)
    while True:
        m = _SPACE.match(text, pos)
        if m:
            pos = m.end()
        if pos >= n:
            out.append(Token("end", None, pos))
            return out
        ch = text[pos]
        if ch in "'\"":
            value, end = _string(text, pos)
            out.append(Token("str", value, pos))
            pos = end
            continue
        if text.startswith("[[", pos):
            end = text.find("]]", pos + 2)
            if end < 0 or end == pos + 2:
                raise QueryError("unterminated or empty [[name]]", pos, text)
            out.append(Token("name", text[pos + 2:end], pos))
            pos = end + 2
            continue
        m = _NUMBER.match(text, pos)
        if m and (ch.isdigit() or (ch == "." and m.end() > pos + 1)):
            raw = m.group()
            if raw[:2] in ("0x", "0X"):
                number: int | float = int(raw, 16)
            elif any(c in raw for c in ".eE"):
                number = float(raw)
            else:
                number = int(raw)
            if _NAME.match(text, m.end()):  # "12abc" is neither a number nor a name
                raise QueryError(f"malformed number {text[pos:m.end() + 1]!r}", pos, text)
            out.append(Token("num", number, pos))
            pos = m.end()
            continue
        m = _NAME.match(text, pos)
        if m:
            word = m.group()
            lower = word.lower()
            out.append(Token("kw", lower, pos) if lower in KEYWORDS else Token("name", word, pos))
            pos = m.end()
            continue
        for op in OPERATORS:
            if text.startswith(op, pos):
                out.append(Token("op", op, pos))
                pos += len(op)
                break
        else:
            raise QueryError(f"unexpected character {ch!r}", pos, text)
