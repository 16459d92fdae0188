"""Recursive-descent parser of the IoT Hub query language: tokens in, a syntax tree out. Pure.

Grammar (the reference's "Query language" section, plus what IoT Hub accepts in practice)::

    query       := SELECT [TOP int] select FROM collection [WHERE expr] [GROUP BY path {, path}]
    select      := '*' | item {',' item}          item := expr [AS name]
    collection  := devices | devices.jobs
    expr        := or ;  or := and {OR and} ;  and := not {AND not} ;  not := NOT not | cmp
    cmp         := sum [(= | != | <> | < | > | <= | >=) sum | (IN | NIN) array]
    sum         := product {(+ | -) product} ;  product := unary {(* | / | %) unary}
    unary       := (- | +) unary | primary
    primary     := constant | array | path | function '(' [expr {',' expr}] ')' | '(' expr ')'
    path        := name {'.' name}               (``[[name]]`` quotes a keyword such as group)

Aggregates (``COUNT() AVG SUM MIN MAX``) are allowed only as SELECT items. Function names and
their argument counts are checked here, so a misspelt function is a 400 that points at it.

Trees are tuples, cheap to walk: ``("const", v)``, ``("path", [names])``, ``("call", fn, args)``,
``("agg", fn, arg|None)``, ``("array", [values])``, ``("cmp", op, a, b)``, ``("in"|"nin", a,
[values])``, ``("and"|"or", a, b)``, ``("not", a)``, ``("arith", op, a, b)``, ``("neg", a)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .lexer import QueryError, Token, tokenize

Node = tuple[Any, ...]

UNDEFINED = object()  # the value of the constant ``undefined`` and of a missing property

# name -> (min args, max args or None for "any number")
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "is_defined": (1, 1), "is_null": (1, 1), "is_string": (1, 1), "is_number": (1, 1),
    "is_bool": (1, 1), "is_object": (1, 1), "is_array": (1, 1), "is_primitive": (1, 1),
    "as_number": (1, 1),
    "abs": (1, 1), "exp": (1, 1), "power": (2, 2), "square": (1, 1), "ceiling": (1, 1),
    "floor": (1, 1), "sign": (1, 1), "sqrt": (1, 1),
    "concat": (2, None), "length": (1, 1), "lower": (1, 1), "upper": (1, 1),
    "substring": (2, 3), "index_of": (2, 2), "starts_with": (2, 2), "ends_with": (2, 2),
    "contains": (2, 2),
}
# Spellings IoT Hub's twin queries accept besides the routing names above.
ALIASES = {"startswith": "starts_with", "endswith": "ends_with", "indexof": "index_of"}
AGGREGATES = frozenset({"count", "avg", "sum", "min", "max"})
COLLECTIONS = ("devices", "devices.jobs")
COMPARISONS = frozenset({"=", "!=", "<>", "<", ">", "<=", ">="})


@dataclass
class Query:
    top: int | None
    projections: list[tuple[Node, str]] | None  # None means SELECT *
    where: Node | None
    group_by: list[Node] | None
    collection: str  # "devices" or "devices.jobs"

    @property
    def aggregated(self) -> bool:
        return self.group_by is not None or any(
            _has_aggregate(e) for e, _ in self.projections or [])


def _has_aggregate(node: Node) -> bool:
    return node[0] == "agg"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.prefix: list[str] = []  # collection name a path may start with ("devices.jobs.x")

    # --- token helpers ---------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def at(self, kind: str, value: Any = None, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind == kind and (value is None or tok.value == value)

    def accept(self, kind: str, value: Any = None) -> bool:
        if self.at(kind, value):
            self.i += 1
            return True
        return False

    def error(self, message: str, tok: Token | None = None) -> QueryError:
        tok = tok or self.peek()
        return QueryError(f"{message}, found {tok.describe()}", tok.pos, self.text)

    def expect(self, kind: str, value: Any = None, what: str | None = None) -> Token:
        if not self.at(kind, value):
            raise self.error(f"expected {what or (str(value).upper() if value else kind)}")
        return self.take()

    # --- statements ------------------------------------------------------------------------
    def query(self) -> Query:
        self.expect("kw", "select", "SELECT")
        top = None
        if self.accept("kw", "top"):
            tok = self.peek()
            if tok.kind != "num" or not isinstance(tok.value, int):
                raise self.error("TOP needs a non-negative integer")
            top = self.take().value
        projections = None
        if not self.accept("op", "*"):
            projections = [self.projection(1)]
            while self.accept("op", ","):
                projections.append(self.projection(len(projections) + 1))
        self.expect("kw", "from", "FROM")
        coll_tok = self.peek()
        names = [self.expect("name", what="a collection (devices or devices.jobs)").value]
        while self.accept("op", "."):
            names.append(self.expect("name", what="a name").value)
        collection = ".".join(names).lower()
        if collection not in COLLECTIONS:
            raise QueryError(f"collection {collection!r} is not supported "
                             "(use devices or devices.jobs)", coll_tok.pos, self.text)
        self.prefix = collection.split(".")
        if projections is not None:
            projections = [(self._strip(e), a) for e, a in projections]
        where = None
        if self.accept("kw", "where"):
            where = self.expression()
        group_by = None
        if self.accept("kw", "group"):
            self.expect("kw", "by", "BY")
            group_by = [self.group_path()]
            while self.accept("op", ","):
                group_by.append(self.group_path())
        self.expect("end", what="end of query")
        query = Query(top, projections, where, group_by, collection)
        self._check(query, coll_tok)
        return query

    def _check(self, query: Query, coll_tok: Token) -> None:
        if query.collection == "devices.jobs" and (query.projections is not None
                                                   or query.group_by is not None):
            raise QueryError("devices.jobs queries support only SELECT * (no projection, "
                             "aggregation or GROUP BY)", coll_tok.pos, self.text)
        if query.group_by is not None and query.projections is None:
            raise QueryError("GROUP BY needs a projection list, not SELECT *", coll_tok.pos,
                             self.text)
        if query.aggregated:
            keys = [repr(g) for g in query.group_by or []]
            for expr, alias in query.projections or []:
                if not _has_aggregate(expr) and repr(expr) not in keys:
                    raise QueryError(f"{alias!r} must be an aggregate or a GROUP BY property "
                                     "in an aggregate query", coll_tok.pos, self.text)

    def _strip(self, node: Node) -> Node:
        """Drop a leading collection name from paths (``devices.jobs.status`` -> ``status``)."""
        if node[0] == "path":
            names = node[1]
            n = len(self.prefix)
            if len(names) > n and [x.lower() for x in names[:n]] == self.prefix:
                return ("path", names[n:])
            return node
        if node[0] in ("const", "array"):
            return node
        if node[0] in ("call", "agg"):
            args = node[2]
            if node[0] == "agg":
                return node if args is None else ("agg", node[1], self._strip(args))
            return ("call", node[1], [self._strip(a) for a in args])
        if node[0] in ("in", "nin"):
            return (node[0], self._strip(node[1]), node[2])
        if node[0] in ("cmp", "arith"):
            return (node[0], node[1], self._strip(node[2]), self._strip(node[3]))
        if node[0] in ("and", "or"):
            return (node[0], self._strip(node[1]), self._strip(node[2]))
        return (node[0], self._strip(node[1]))  # not, neg

    def projection(self, index: int) -> tuple[Node, str]:
        start = self.peek()
        if (start.kind == "name" and start.value.lower() in AGGREGATES
                and self.at("op", "(", 1)):
            fn = self.take().value.lower()
            self.take()
            arg = None
            if fn == "count":
                self.expect("op", ")", "')' (COUNT takes no argument)")
            else:
                arg = self.path()
                self.expect("op", ")", "')'")
            expr: Node = ("agg", fn, arg)
            alias = f"${index}"
        else:
            expr = self.expression()
            alias = expr[1][-1] if expr[0] == "path" else f"${index}"
        if self.accept("kw", "as"):
            alias = self.expect("name", what="an alias").value
        return expr, alias

    def group_path(self) -> Node:
        return self._strip(self.path())

    def path(self) -> Node:
        names = [self.expect("name", what="a property name").value]
        while self.accept("op", "."):
            names.append(self.member())
        return ("path", names)

    def member(self) -> str:
        """A name after '.': a keyword there can only be a property (``tags.group``)."""
        tok = self.peek()
        if tok.kind == "kw":
            self.i += 1
            return self.text[tok.pos:tok.pos + len(tok.value)]  # as written, not lowercased
        return self.expect("name", what="a property name").value

    # --- expressions -----------------------------------------------------------------------
    def expression(self) -> Node:
        node = self._expr_or()
        return self._strip(node) if self.prefix else node

    def _expr_or(self) -> Node:
        left = self._expr_and()
        while self.accept("kw", "or"):
            left = ("or", left, self._expr_and())
        return left

    def _expr_and(self) -> Node:
        left = self._expr_not()
        while self.accept("kw", "and"):
            left = ("and", left, self._expr_not())
        return left

    def _expr_not(self) -> Node:
        if self.accept("kw", "not"):
            return ("not", self._expr_not())
        return self._comparison()

    def _comparison(self) -> Node:
        left = self._sum()
        tok = self.peek()
        if tok.kind == "op" and tok.value in COMPARISONS:
            self.i += 1
            op = "!=" if tok.value == "<>" else tok.value
            return ("cmp", op, left, self._sum())
        if tok.kind == "kw" and tok.value in ("in", "nin"):
            self.i += 1
            if not self.at("op", "["):
                raise self.error(f"expected an array of constants after {tok.value.upper()}")
            return (tok.value, left, self.array())
        if tok.kind == "kw" and tok.value == "not" and self.at("kw", "in", 1):
            self.i += 2
            return ("nin", left, self.array())
        return left

    def _sum(self) -> Node:
        left = self._product()
        while self.peek().kind == "op" and self.peek().value in ("+", "-"):
            op = self.take().value
            left = ("arith", op, left, self._product())
        return left

    def _product(self) -> Node:
        left = self._unary()
        while self.peek().kind == "op" and self.peek().value in ("*", "/", "%"):
            op = self.take().value
            left = ("arith", op, left, self._unary())
        return left

    def _unary(self) -> Node:
        if self.accept("op", "-"):
            operand = self._unary()
            if operand[0] == "const" and isinstance(operand[1], (int, float)) \
                    and not isinstance(operand[1], bool):
                return ("const", -operand[1])
            return ("neg", operand)
        if self.accept("op", "+"):
            return self._unary()
        return self._primary()

    def array(self) -> list[Any]:
        self.expect("op", "[", "'['")
        values: list[Any] = []
        if not self.accept("op", "]"):
            values.append(self.constant())
            while self.accept("op", ","):
                values.append(self.constant())
            self.expect("op", "]", "',' or ']'")
        return values

    def constant(self) -> Any:
        tok = self.peek()
        negative = False
        if tok.kind == "op" and tok.value == "-" and self.at("num", None, 1):
            self.i += 1
            negative = True
            tok = self.peek()
        if tok.kind in ("num", "str"):
            self.i += 1
            return -tok.value if negative else tok.value
        if tok.kind == "kw" and tok.value in ("true", "false", "null", "undefined"):
            self.i += 1
            return {"true": True, "false": False, "null": None, "undefined": UNDEFINED}[tok.value]
        if tok.kind == "op" and tok.value == "[":
            return self.array()
        raise self.error("expected a constant")

    def _primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.value == "(":
            self.i += 1
            inner = self._expr_or()
            self.expect("op", ")", "')'")
            return inner
        if tok.kind == "op" and tok.value == "[":
            return ("array", self.array())
        if tok.kind in ("num", "str") or (
                tok.kind == "kw" and tok.value in ("true", "false", "null", "undefined")):
            return ("const", self.constant())
        if tok.kind == "name":
            if self.at("op", "(", 1):
                return self.call()
            return self.path()
        if tok.kind == "op" and tok.value == "*":
            raise self.error("'*' is only allowed as SELECT *")
        raise self.error("expected a value, a property or a function call")

    def call(self) -> Node:
        tok = self.take()
        name = tok.value.lower()
        name = ALIASES.get(name, name)
        if name in AGGREGATES:
            raise QueryError(f"aggregate {name.upper()}() is only allowed in the SELECT list",
                             tok.pos, self.text)
        if name not in FUNCTIONS:
            raise QueryError(f"unknown function {tok.value!r}", tok.pos, self.text)
        self.take()  # "("
        args: list[Node] = []
        if not self.accept("op", ")"):
            args.append(self._expr_or())
            while self.accept("op", ","):
                args.append(self._expr_or())
            self.expect("op", ")", "',' or ')'")
        low, high = FUNCTIONS[name]
        if len(args) < low or (high is not None and len(args) > high):
            if low == high:
                want = str(low)
            else:
                want = f"{low} or more" if high is None else f"{low}..{high}"
            raise QueryError(f"{name.upper()} takes {want} argument(s), got {len(args)}",
                             tok.pos, self.text)
        return ("call", name, args)


def parse(text: Any) -> Query:
    """Parse a whole query. Raises :class:`QueryError` with the position of the problem."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("empty query: expected SELECT ... FROM devices")
    return _Parser(text).query()


def parse_condition(text: Any) -> Node:
    """Parse a bare condition (a job's ``queryCondition``: the WHERE part of a query)."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("empty query condition")
    parser = _Parser(text)
    parser.prefix = ["devices"]
    node = parser.expression()
    parser.expect("end", what="end of the condition (give only the WHERE part, without WHERE)")
    return node
