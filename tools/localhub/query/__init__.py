"""The IoT Hub query language: evaluate a parsed query over JSON documents, and page results. Pure.

``parse(text)`` (from :mod:`query_parser`, tokens from :mod:`query_lexer`) gives a
:class:`Query`; ``run(query, docs)`` filters, groups and projects the documents of its collection
(device twins for ``FROM devices``, per-device job records for ``FROM devices.jobs``) and returns
``(item type, rows)``, the item type being what ``x-ms-item-type`` carries (``twin``,
``deviceJob`` or ``raw``).

Semantics kept from IoT Hub (Cosmos DB's SQL underneath):
- a missing property is *undefined*; any comparison or arithmetic with undefined is undefined,
  and only a condition that is exactly ``true`` selects a document;
- ``AND``/``OR``/``NOT`` are three-valued (``false AND undefined`` is false, ``true OR
  undefined`` is true, ``NOT undefined`` is undefined);
- ``=`` and ``!=`` compare any two defined values (different types are unequal); ``< > <= >=``
  only numbers with numbers and strings with strings, otherwise undefined;
- top-level twin fields match case-insensitively (``LastActivityTime``, ``DeviceId``);
- functions given a wrong type return undefined rather than failing the query.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any, Callable

from .lexer import QueryError
from .parser import FUNCTIONS, UNDEFINED, Node, Query, parse, parse_condition

__all__ = ["QueryError", "Query", "parse", "parse_condition", "run", "matches", "evaluate",
           "page", "UNDEFINED", "MAX_PAGE_SIZE", "DEFAULT_PAGE_SIZE"]

_UNDEF = UNDEFINED
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


# --- values ---------------------------------------------------------------------------------
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if _is_number(v):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _lookup(doc: Any, names: list[str]) -> Any:
    value = doc
    for depth, name in enumerate(names):
        if not isinstance(value, dict):
            return _UNDEF
        if name in value:
            value = value[name]
            continue
        if depth == 0:  # system fields match case-insensitively (LastActivityTime)
            lowered = name.lower()
            for key in value:
                if key.lower() == lowered:
                    value = value[key]
                    break
            else:
                return _UNDEF
            continue
        return _UNDEF
    return value


def _equal(a: Any, b: Any) -> bool:
    if _kind(a) != _kind(b):
        return False
    return bool(a == b)


def _compare(op: str, a: Any, b: Any) -> Any:
    if a is _UNDEF or b is _UNDEF:
        return _UNDEF
    if op == "=":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    ka, kb = _kind(a), _kind(b)
    if ka != kb or ka not in ("number", "string"):
        return _UNDEF
    if op == "<":
        return a < b
    if op == ">":
        return a > b
    if op == "<=":
        return a <= b
    return a >= b


def _arith(op: str, a: Any, b: Any) -> Any:
    if not (_is_number(a) and _is_number(b)):
        return _UNDEF
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if isinstance(a, float) or isinstance(b, float):
            return math.fmod(a, b)
        rem = abs(a) % abs(b)  # the sign of the dividend, as in JavaScript and Cosmos DB
        return rem if a >= 0 else -rem
    except (ZeroDivisionError, ValueError, OverflowError):
        return _UNDEF


# --- functions --------------------------------------------------------------------------------
def _num(fn: Callable[[float], Any]) -> Callable[[Any], Any]:
    def wrapped(x: Any) -> Any:
        if not _is_number(x):
            return _UNDEF
        try:
            return fn(x)
        except (ValueError, OverflowError):
            return _UNDEF
    return wrapped


def _str2(fn: Callable[[str, str], Any]) -> Callable[[Any, Any], Any]:
    def wrapped(a: Any, b: Any) -> Any:
        if not (isinstance(a, str) and isinstance(b, str)):
            return _UNDEF
        return fn(a, b)
    return wrapped


def _as_number(x: Any) -> Any:
    if _is_number(x):
        return x
    if isinstance(x, str):
        try:
            value = float(x)
        except ValueError:
            return _UNDEF
        if math.isfinite(value):
            return int(value) if value.is_integer() and "." not in x and "e" not in x.lower() \
                else value
    return _UNDEF


def _power(x: Any, y: Any) -> Any:
    if not (_is_number(x) and _is_number(y)):
        return _UNDEF
    try:
        result = x ** y
    except (ZeroDivisionError, OverflowError):
        return _UNDEF
    return _UNDEF if isinstance(result, complex) else result


def _concat(*args: Any) -> Any:
    if not all(isinstance(a, str) for a in args):
        return _UNDEF
    return "".join(args)


def _substring(s: Any, start: Any, length: Any = None) -> Any:
    if not isinstance(s, str) or not isinstance(start, int) or isinstance(start, bool):
        return _UNDEF
    if length is None:
        return s[max(start, 0):]
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        return _UNDEF
    start = max(start, 0)
    return s[start:start + length]


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


_IMPL: dict[str, Callable[..., Any]] = {
    "is_defined": lambda v: v is not _UNDEF,
    "is_null": lambda v: v is None,
    "is_string": lambda v: isinstance(v, str),
    "is_number": _is_number,
    "is_bool": lambda v: isinstance(v, bool),
    "is_object": lambda v: isinstance(v, dict),
    "is_array": lambda v: isinstance(v, list),
    "is_primitive": lambda v: v is None or isinstance(v, (str, bool, int, float)),
    "as_number": _as_number,
    "abs": _num(abs),
    "exp": _num(math.exp),
    "power": _power,
    "square": _num(lambda x: x * x),
    "ceiling": _num(math.ceil),
    "floor": _num(math.floor),
    "sign": _num(_sign),
    "sqrt": _num(math.sqrt),
    "concat": _concat,
    "length": lambda s: len(s) if isinstance(s, str) else _UNDEF,
    "lower": lambda s: s.lower() if isinstance(s, str) else _UNDEF,
    "upper": lambda s: s.upper() if isinstance(s, str) else _UNDEF,
    "substring": _substring,
    "index_of": _str2(lambda s, f: s.find(f)),
    "starts_with": _str2(lambda s, p: s.startswith(p)),
    "ends_with": _str2(lambda s, p: s.endswith(p)),
    "contains": _str2(lambda s, p: p in s),
}
# Every function the parser accepts has an implementation (checked at import, not at run time).
if set(_IMPL) != set(FUNCTIONS):
    raise ImportError(f"query functions out of sync: {set(_IMPL) ^ set(FUNCTIONS)}")


# --- evaluation -------------------------------------------------------------------------------
def evaluate(node: Node, doc: dict[str, Any]) -> Any:
    """Value of ``node`` for one document (:data:`UNDEFINED` when undefined)."""
    kind = node[0]
    if kind == "path":
        return _lookup(doc, node[1])
    if kind == "const":
        return node[1]
    if kind == "cmp":
        return _compare(node[1], evaluate(node[2], doc), evaluate(node[3], doc))
    if kind == "and":
        left = evaluate(node[1], doc)
        if left is False:
            return False
        right = evaluate(node[2], doc)
        if right is False:
            return False
        return True if left is True and right is True else _UNDEF
    if kind == "or":
        left = evaluate(node[1], doc)
        if left is True:
            return True
        right = evaluate(node[2], doc)
        if right is True:
            return True
        return False if left is False and right is False else _UNDEF
    if kind == "not":
        value = evaluate(node[1], doc)
        return (not value) if isinstance(value, bool) else _UNDEF
    if kind in ("in", "nin"):
        value = evaluate(node[1], doc)
        if value is _UNDEF:
            return _UNDEF
        found = any(_equal(value, c) for c in node[2] if c is not _UNDEF)
        return found if kind == "in" else not found
    if kind == "call":
        args = [evaluate(a, doc) for a in node[2]]
        if node[1] != "is_defined" and any(a is _UNDEF for a in args):
            return _UNDEF
        return _IMPL[node[1]](*args)
    if kind == "arith":
        return _arith(node[1], evaluate(node[2], doc), evaluate(node[3], doc))
    if kind == "neg":
        value = evaluate(node[1], doc)
        return -value if _is_number(value) else _UNDEF
    if kind == "array":
        return list(node[1])
    raise QueryError(f"cannot evaluate {kind!r} here")


def matches(condition: Node | None, doc: dict[str, Any]) -> bool:
    """Whether a WHERE condition selects ``doc`` (only an exact ``true`` does)."""
    return condition is None or evaluate(condition, doc) is True


def _aggregate(fn: str, arg: Node | None, members: list[dict[str, Any]]) -> Any:
    if fn == "count":
        return len(members)
    values = [evaluate(arg, m) for m in members] if arg is not None else []
    numbers = [v for v in values if _is_number(v)]
    if fn == "sum":
        return sum(numbers)
    if fn == "avg":
        return sum(numbers) / len(numbers) if numbers else _UNDEF
    comparable = numbers or [v for v in values if isinstance(v, str)]
    if not comparable:
        return _UNDEF
    return min(comparable) if fn == "min" else max(comparable)


def _group_key(values: list[Any]) -> str:
    return json.dumps([["u"] if v is _UNDEF else ["v", v] for v in values], sort_keys=True,
                      default=str)


def run(query: Query, docs: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """Return (item type for ``x-ms-item-type``, result rows) of ``query`` over ``docs``."""
    rows = [d for d in docs if matches(query.where, d)]
    if query.aggregated:
        groups: dict[str, tuple[list[Any], list[dict[str, Any]]]] = {}
        group_by = query.group_by or []
        for doc in rows:
            key_values = [evaluate(g, doc) for g in group_by]
            groups.setdefault(_group_key(key_values), (key_values, []))[1].append(doc)
        if not group_by and not groups:
            groups[""] = ([], [])  # COUNT() over nothing is one row with 0
        out = []
        for key_values, members in groups.values():
            item: dict[str, Any] = {}
            for expr, alias in query.projections or []:
                if expr[0] == "agg":
                    value = _aggregate(expr[1], expr[2], members)
                else:
                    value = key_values[[repr(g) for g in group_by].index(repr(expr))]
                if value is not _UNDEF:
                    item[alias] = value
            out.append(item)
        return "raw", out[:query.top] if query.top is not None else out
    if query.top is not None:
        rows = rows[:query.top]
    if query.projections is None:
        return ("deviceJob" if query.collection == "devices.jobs" else "twin"), rows
    out = []
    for doc in rows:
        item = {}
        for expr, alias in query.projections:
            value = evaluate(expr, doc)
            if value is not _UNDEF:
                item[alias] = value
        out.append(item)
    return "raw", out


# --- paging -----------------------------------------------------------------------------------
def page(rows: list[Any], max_items: str | None, continuation: str | None
         ) -> tuple[list[Any], str | None]:
    """One page of ``rows`` for ``x-ms-max-item-count`` / ``x-ms-continuation``.

    The token is opaque to clients (base64 of the offset); a page size outside 1..1000 is
    clamped. Raises :class:`ValueError` for a malformed header value.
    """
    size = int(max_items) if max_items else DEFAULT_PAGE_SIZE
    size = max(1, min(size, MAX_PAGE_SIZE))
    start = 0
    if continuation:
        try:
            start = int(base64.b64decode(continuation, validate=True).decode("ascii"))
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise ValueError("malformed continuation token") from exc
        if start < 0:
            raise ValueError("malformed continuation token")
    chunk = rows[start:start + size]
    token = base64.b64encode(str(start + size).encode()).decode() \
        if start + size < len(rows) else None
    return chunk, token
