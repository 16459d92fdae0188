"""The IoT Hub query language over device twins (``POST /devices/query``). Pure.

Supported: ``SELECT [TOP n] * | <path> [AS a], ... | COUNT() AS a FROM devices [WHERE <cond>]
[GROUP BY <path>]``. Conditions: ``= != <> < > <= >=``, ``AND OR NOT``, parentheses,
``IN [..]`` / ``NIN [..]``, functions ``IS_DEFINED IS_NULL IS_STRING IS_NUMBER IS_BOOL
IS_OBJECT STARTSWITH ENDSWITH LOWER UPPER``, constants (strings in single or double quotes,
numbers, true/false/null), paths like ``tags.location.plant`` or ``properties.reported.x``.
Comparisons between different types are false (undefined), as in IoT Hub. Keywords and
top-level twin fields (``deviceId``, ``LastActivityTime``) match case-insensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_UNDEF = object()

TOKEN_RE = re.compile(r"""
    \s*(?:
      (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | '(?P<sq>(?:[^'\\]|\\.|'')*)'
    | "(?P<dq>(?:[^"\\]|\\.)*)"
    | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|\[|\]|,|\.|\*)
    | (?P<name>\[\[[^\]]+\]\]|[A-Za-z_$][A-Za-z0-9_$\-]*)
    )""", re.VERBOSE)

KEYWORDS = {"select", "top", "from", "where", "and", "or", "not", "in", "nin", "as", "group",
            "by", "true", "false", "null", "undefined"}


class QueryError(ValueError):
    """A query the hub cannot parse or run (answered with 400)."""


@dataclass
class Tok:
    kind: str  # num, str, op, name, kw, end
    value: Any


def tokenize(text: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"unexpected character at {pos}: {text[pos:pos + 10]!r}")
        pos = m.end()
        if m.group("num") is not None:
            num = m.group("num")
            out.append(Tok("num", float(num) if any(c in num for c in ".eE") else int(num)))
        elif m.group("sq") is not None:
            out.append(Tok("str", m.group("sq").replace("''", "'").replace("\\'", "'")))
        elif m.group("dq") is not None:
            out.append(Tok("str", m.group("dq").replace('\\"', '"')))
        elif m.group("op") is not None:
            out.append(Tok("op", m.group("op")))
        else:
            name = m.group("name")
            if name.startswith("[["):
                out.append(Tok("name", name[2:-2]))
            elif name.lower() in KEYWORDS:
                out.append(Tok("kw", name.lower()))
            else:
                out.append(Tok("name", name))
    out.append(Tok("end", None))
    return out


@dataclass
class Query:
    top: int | None
    projections: list[tuple[Any, str]] | None  # None means SELECT *
    where: Any
    group_by: list[str] | None
    collection: str


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def accept(self, kind: str, value: Any = None) -> bool:
        tok = self.peek()
        if tok.kind == kind and (value is None or tok.value == value):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, value: Any = None) -> Tok:
        tok = self.take()
        if tok.kind != kind or (value is not None and tok.value != value):
            raise QueryError(f"expected {value or kind}, found {tok.value!r}")
        return tok

    def query(self) -> Query:
        self.expect("kw", "select")
        top = None
        if self.accept("kw", "top"):
            top = self.expect("num").value
            if not isinstance(top, int) or top < 0:
                raise QueryError("TOP needs a non-negative integer")
        projections = None
        if not self.accept("op", "*"):
            projections = [self.projection()]
            while self.accept("op", ","):
                projections.append(self.projection())
        self.expect("kw", "from")
        collection = self.expect("name").value.lower()
        while self.accept("op", "."):
            collection += "." + self.expect("name").value.lower()
        if collection != "devices":
            raise QueryError(f"collection {collection!r} is not supported by the local hub")
        where = self.condition() if self.accept("kw", "where") else None
        group_by = None
        if self.accept("kw", "group"):
            self.expect("kw", "by")
            group_by = self.path_names()
        self.expect("end")
        return Query(top, projections, where, group_by, collection)

    def projection(self) -> tuple[Any, str]:
        tok = self.peek()
        if tok.kind == "name" and tok.value.lower() == "count" and self.toks[self.i + 1].value == "(":
            self.i += 2
            self.expect("op", ")")
            expr: Any = ("count",)
            alias = "$1"
        else:
            names = self.path_names()
            expr, alias = ("path", names), names[-1]
        if self.accept("kw", "as"):
            alias = self.expect("name").value
        return expr, alias

    def path_names(self) -> list[str]:
        names = [self.expect("name").value]
        while self.accept("op", "."):
            names.append(self.expect("name").value)
        return names

    def condition(self) -> Any:
        left = self.conjunction()
        while self.accept("kw", "or"):
            left = ("or", left, self.conjunction())
        return left

    def conjunction(self) -> Any:
        left = self.negation()
        while self.accept("kw", "and"):
            left = ("and", left, self.negation())
        return left

    def negation(self) -> Any:
        if self.accept("kw", "not"):
            return ("not", self.negation())
        return self.comparison()

    def comparison(self) -> Any:
        left = self.operand()
        tok = self.peek()
        if tok.kind == "op" and tok.value in ("=", "!=", "<>", "<", ">", "<=", ">="):
            self.i += 1
            return ("cmp", "!=" if tok.value == "<>" else tok.value, left, self.operand())
        if tok.kind == "kw" and tok.value in ("in", "nin"):
            self.i += 1
            return (tok.value, left, self.array())
        return left

    def array(self) -> list[Any]:
        self.expect("op", "[")
        values = [] if self.peek().value == "]" else [self.constant()]
        while self.accept("op", ","):
            values.append(self.constant())
        self.expect("op", "]")
        return values

    def constant(self) -> Any:
        tok = self.take()
        if tok.kind in ("num", "str"):
            return tok.value
        if tok.kind == "kw" and tok.value in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.value]
        raise QueryError(f"expected a constant, found {tok.value!r}")

    def operand(self) -> Any:
        tok = self.peek()
        if tok.kind == "op" and tok.value == "(":
            self.i += 1
            inner = self.condition()
            self.expect("op", ")")
            return inner
        if tok.kind == "op" and tok.value == "[":
            return ("const", self.array())
        if tok.kind in ("num", "str") or (tok.kind == "kw" and tok.value in ("true", "false", "null")):
            return ("const", self.constant())
        if tok.kind == "kw" and tok.value == "undefined":
            self.i += 1
            return ("const", _UNDEF)
        if tok.kind == "name":
            if self.toks[self.i + 1].value == "(" and self.toks[self.i + 1].kind == "op":
                name = self.take().value.lower()
                self.take()
                args = [] if self.peek().value == ")" else [self.condition()]
                while self.accept("op", ","):
                    args.append(self.condition())
                self.expect("op", ")")
                if name not in FUNCTIONS:
                    raise QueryError(f"unknown function {name}")
                return ("call", name, args)
            return ("path", self.path_names())
        raise QueryError(f"unexpected {tok.value!r}")


def parse(text: str) -> Query:
    if not isinstance(text, str) or not text.strip():
        raise QueryError("empty query")
    return _Parser(text).query()


def _lookup(doc: Any, names: list[str]) -> Any:
    value = doc
    for depth, name in enumerate(names):
        if not isinstance(value, dict):
            return _UNDEF
        if name in value:
            value = value[name]
            continue
        if depth == 0:  # system fields match case-insensitively (LastActivityTime)
            match = [k for k in value if k.lower() == name.lower()]
            if match:
                value = value[match[0]]
                continue
        return _UNDEF
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "num"
    if isinstance(value, str):
        return "str"
    return "other"


def _compare(op: str, a: Any, b: Any) -> bool:
    if a is _UNDEF or b is _UNDEF:
        return False
    if op in ("=", "!="):
        same = _kind(a) == _kind(b) and a == b
        return same if op == "=" else not same
    if _kind(a) != _kind(b) or _kind(a) not in ("num", "str"):
        return False
    return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def _fn_startswith(s: Any, p: Any) -> bool:
    return isinstance(s, str) and isinstance(p, str) and s.startswith(p)


def _fn_endswith(s: Any, p: Any) -> bool:
    return isinstance(s, str) and isinstance(p, str) and s.endswith(p)


FUNCTIONS = {
    "is_defined": lambda v: v is not _UNDEF,
    "is_null": lambda v: v is None,
    "is_string": lambda v: isinstance(v, str),
    "is_number": lambda v: _kind(v) == "num",
    "is_bool": lambda v: isinstance(v, bool),
    "is_object": lambda v: isinstance(v, dict),
    "startswith": _fn_startswith,
    "endswith": _fn_endswith,
    "lower": lambda v: v.lower() if isinstance(v, str) else _UNDEF,
    "upper": lambda v: v.upper() if isinstance(v, str) else _UNDEF,
}


def evaluate(expr: Any, doc: dict[str, Any]) -> Any:
    kind = expr[0]
    if kind == "const":
        return expr[1]
    if kind == "path":
        return _lookup(doc, expr[1])
    if kind == "and":
        return evaluate(expr[1], doc) is True and evaluate(expr[2], doc) is True
    if kind == "or":
        return evaluate(expr[1], doc) is True or evaluate(expr[2], doc) is True
    if kind == "not":
        return evaluate(expr[1], doc) is not True
    if kind == "cmp":
        return _compare(expr[1], evaluate(expr[2], doc), evaluate(expr[3], doc))
    if kind in ("in", "nin"):
        value = evaluate(expr[1], doc)
        if value is _UNDEF:
            return False
        found = any(_compare("=", value, c) for c in expr[2])
        return found if kind == "in" else not found
    if kind == "call":
        fn = FUNCTIONS[expr[1]]
        args = [evaluate(a, doc) for a in expr[2]]
        try:
            return fn(*args)
        except TypeError as exc:
            raise QueryError(f"wrong number of arguments to {expr[1]}") from exc
    raise QueryError(f"cannot evaluate {kind}")


def run(query: Query, twins: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """Return (item type for ``x-ms-item-type``, result rows)."""
    rows = [t for t in twins if query.where is None or evaluate(query.where, t) is True]
    if query.group_by is not None or (query.projections and any(e[0] == "count" for e, _ in query.projections)):
        groups: dict[str, tuple[list[Any], list[dict[str, Any]]]] = {}
        for twin in rows:
            key_vals = [] if query.group_by is None else [_lookup(twin, query.group_by)]
            key = repr(key_vals)
            groups.setdefault(key, (key_vals, []))[1].append(twin)
        out = []
        for key_vals, members in groups.values():
            item: dict[str, Any] = {}
            for expr, alias in query.projections or []:
                if expr[0] == "count":
                    item[alias] = len(members)
                else:
                    value = _lookup(members[0], expr[1])
                    if value is not _UNDEF:
                        item[alias] = value
            out.append(item)
        return "raw", out[:query.top] if query.top is not None else out
    if query.top is not None:
        rows = rows[:query.top]
    if query.projections is None:
        return "twin", rows
    out = []
    for twin in rows:
        item = {}
        for expr, alias in query.projections:
            value = _lookup(twin, expr[1])
            if value is not _UNDEF:
                item[alias] = value
        out.append(item)
    return "raw", out
