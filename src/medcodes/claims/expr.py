"""A small expression language for claim rules: one definition, run by Python per claim and by Polars in batch.

A rule's condition, message, location, codes, severity and source are written
once with these nodes (:func:`col`, :func:`lit`, :func:`fmt`, :func:`when`,
comparison and boolean operators). Each node knows how to become

* a Polars expression (:meth:`Expr.pl`), which batch mode evaluates over a
  whole table of rows at once, and
* a Python function of one row (a ``dict``; :meth:`Expr.py`), which the
  per-claim checker calls.

Both follow SQL/Polars null rules: a comparison with a null is null, ``&`` and
``|`` are three-valued, :func:`fmt` of a null is null, and a condition holds
only when it is true (not null). Dates print as YYYY-MM-DD, integers as digits,
floats through :func:`num` with a Python format spec (computed once per
distinct value in batch, so both modes print the same text).

For speed the per-claim checker does not call the nodes' row functions one by
one: :func:`compile_py` writes a whole expression (or a rule: condition and
finding) as ONE Python function whose body inlines every node with the same
null rules (:meth:`Expr.src`); a node without an inline form is called through
its row function.
"""

from __future__ import annotations

import datetime as _dt
import operator
from typing import Any, Callable

import polars as pl

Row = dict[str, Any]


class Expr:
    """One node: ``pl()`` builds the Polars expression, ``py`` is the compiled row function."""

    __slots__ = ("pl", "py", "cols", "spread", "parts", "gen", "tgen", "nfgen")

    def __init__(self, to_pl: Callable[[], pl.Expr], py: Callable[[Row], Any], cols: frozenset[str],
                 gen: "Callable[[Gen], str] | None" = None) -> None:
        self.pl = to_pl
        self.py = py
        self.cols = cols
        self.spread = False          # a list whose items are a finding's codes
        self.parts: list[Expr] = []  # the conjuncts of an all_of()
        self.gen = gen               # the node as inline Python source (compile_py), or None
        self.tgen: "Callable[[Gen], str] | None" = None    # source of "the value is True"
        self.nfgen: "Callable[[Gen], str] | None" = None   # source of "the value is neither null nor False"

    def src(self, g: "Gen") -> str:
        """This node as a Python expression over the row ``r`` (same values as :attr:`py`)."""
        if self.gen is not None:
            return f"({self.gen(g)})"
        return f"{g.const(self.py)}(r)"

    def t(self, g: "Gen") -> str:
        """A Python condition: this node's value is True (how a rule's condition holds)."""
        if self.tgen is not None:
            return f"({self.tgen(g)})"
        return f"({self.src(g)} is True)"

    def nf(self, g: "Gen") -> str:
        """A Python condition: this node's value is neither null nor False (how ``&`` reads an operand)."""
        if self.nfgen is not None:
            return f"({self.nfgen(g)})"
        x = g.tmp()
        return f"(({x} := {self.src(g)}) is not None and {x} is not False)"

    def _bool(self, test: "Callable[[Gen], str]") -> "Expr":
        """Mark a node whose value is True, False or None: its truth test is ``test``."""
        self.tgen = self.nfgen = test
        return self

    # comparisons (null-propagating)
    def _cmp(self, other: Any, op: Callable[[Any, Any], Any], name: str) -> "Expr":
        o = _wrap(other)
        a, b = self.py, o.py

        def py(r: Row) -> Any:
            x, y = a(r), b(r)
            return None if x is None or y is None else op(x, y)

        def gen(g: Gen) -> str:
            x, sx = g.tmp(), self.src(g)
            if o.gen is not None and o.cols == frozenset() and o.py(None) is not None:   # a literal
                return f"None if ({x} := {sx}) is None else {x} {_OPS[name]} {o.src(g)}"
            y = g.tmp()
            return f"None if ({x} := {sx}) is None or ({y} := {o.src(g)}) is None else {x} {_OPS[name]} {y}"

        def test(g: Gen) -> str:
            x, sx = g.tmp(), self.src(g)
            if o.gen is not None and o.cols == frozenset() and o.py(None) is not None:   # a literal
                return f"({x} := {sx}) is not None and {x} {_OPS[name]} {o.src(g)}"
            y = g.tmp()
            return f"({x} := {sx}) is not None and ({y} := {o.src(g)}) is not None and {x} {_OPS[name]} {y}"
        e = Expr(lambda: getattr(self.pl(), name)(o.pl()), py, self.cols | o.cols, gen)
        return e._bool(test) if name not in ("__add__", "__sub__") else e

    def __eq__(self, other: Any) -> "Expr":  # type: ignore[override]
        return self._cmp(other, operator.eq, "__eq__")

    def __ne__(self, other: Any) -> "Expr":  # type: ignore[override]
        return self._cmp(other, operator.ne, "__ne__")

    def __lt__(self, other: Any) -> "Expr":
        return self._cmp(other, operator.lt, "__lt__")

    def __le__(self, other: Any) -> "Expr":
        return self._cmp(other, operator.le, "__le__")

    def __gt__(self, other: Any) -> "Expr":
        return self._cmp(other, operator.gt, "__gt__")

    def __ge__(self, other: Any) -> "Expr":
        return self._cmp(other, operator.ge, "__ge__")

    def __add__(self, other: Any) -> "Expr":
        return self._cmp(other, operator.add, "__add__")

    def __sub__(self, other: Any) -> "Expr":
        return self._cmp(other, operator.sub, "__sub__")

    __hash__ = None  # type: ignore[assignment]

    # three-valued logic
    def __and__(self, other: Any) -> "Expr":
        o = _wrap(other)
        a, b = self.py, o.py

        def py(r: Row) -> Any:
            x = a(r)
            if x is False:
                return False
            y = b(r)
            if y is False:
                return False
            return None if x is None or y is None else True

        def gen(g: Gen) -> str:
            x, y = g.tmp(), g.tmp()
            return (f"False if ({x} := {self.src(g)}) is False or ({y} := {o.src(g)}) is False else "
                    f"(None if {x} is None or {y} is None else True)")
        return Expr(lambda: self.pl() & o.pl(), py, self.cols | o.cols, gen)._bool(
            lambda g: f"{self.nf(g)} and {o.nf(g)}")

    def __or__(self, other: Any) -> "Expr":
        o = _wrap(other)
        a, b = self.py, o.py

        def py(r: Row) -> Any:
            x = a(r)
            if x is True:
                return True
            y = b(r)
            if y is True:
                return True
            return None if x is None or y is None else False

        def gen(g: Gen) -> str:
            x, y = g.tmp(), g.tmp()
            return (f"True if ({x} := {self.src(g)}) is True or ({y} := {o.src(g)}) is True else "
                    f"(None if {x} is None or {y} is None else False)")
        e = Expr(lambda: self.pl() | o.pl(), py, self.cols | o.cols, gen)
        e.tgen = lambda g: f"{self.t(g)} or {o.t(g)}"
        return e

    def __invert__(self) -> "Expr":
        a = self.py
        return Expr(lambda: ~self.pl(), lambda r: None if (x := a(r)) is None else not x, self.cols,
                    lambda g: f"None if ({(x := g.tmp())} := {self.src(g)}) is None else not {x}")._bool(
            lambda g: f"({(x := g.tmp())} := {self.src(g)}) is not None and not {x}")

    def is_null(self) -> "Expr":
        a = self.py
        return Expr(lambda: self.pl().is_null(), lambda r: a(r) is None, self.cols,
                    lambda g: f"{self.src(g)} is None")._bool(lambda g: f"{self.src(g)} is None")

    def not_null(self) -> "Expr":
        a = self.py
        return Expr(lambda: self.pl().is_not_null(), lambda r: a(r) is not None, self.cols,
                    lambda g: f"{self.src(g)} is not None")._bool(lambda g: f"{self.src(g)} is not None")

    def is_in(self, values: list[Any]) -> "Expr":
        a, vs = self.py, frozenset(values)
        return Expr(lambda: self.pl().is_in(list(values)), lambda r: None if (x := a(r)) is None else x in vs,
                    self.cols, lambda g: f"None if ({(x := g.tmp())} := {self.src(g)}) is None else {x} in {g.const(vs)}"
                    )._bool(lambda g: f"({(x := g.tmp())} := {self.src(g)}) is not None and {x} in {g.const(vs)}")

    def matches(self, pattern: str) -> "Expr":
        import re
        rx, a = re.compile(pattern), self.py
        return Expr(lambda: self.pl().str.contains(pattern),
                    lambda r: None if (x := a(r)) is None else rx.search(x) is not None, self.cols,
                    lambda g: (f"None if ({(x := g.tmp())} := {self.src(g)}) is None else "
                               f"{g.const(rx.search)}({x}) is not None"))._bool(
            lambda g: f"({(x := g.tmp())} := {self.src(g)}) is not None and {g.const(rx.search)}({x}) is not None")

    def starts_with(self, prefix: str) -> "Expr":
        a = self.py
        return Expr(lambda: self.pl().str.starts_with(prefix),
                    lambda r: None if (x := a(r)) is None else x.startswith(prefix), self.cols,
                    lambda g: (f"None if ({(x := g.tmp())} := {self.src(g)}) is None else "
                               f"{x}.startswith({g.const(prefix)})"))._bool(
            lambda g: f"({(x := g.tmp())} := {self.src(g)}) is not None and {x}.startswith({g.const(prefix)})")

    def contains(self, value: str) -> "Expr":
        """A list column holds ``value``."""
        a = self.py
        return Expr(lambda: self.pl().list.contains(value), lambda r: None if (x := a(r)) is None else value in x,
                    self.cols, lambda g: f"None if ({(x := g.tmp())} := {self.src(g)}) is None else {g.const(value)} in {x}"
                    )._bool(lambda g: f"({(x := g.tmp())} := {self.src(g)}) is not None and {g.const(value)} in {x}")

    def index_of(self, value: str) -> "Expr":
        """Position of the first ``value`` in a list column (null when absent)."""
        a = self.py

        def py(r: Row) -> Any:
            x = a(r)
            return x.index(value) if x is not None and value in x else None
        return Expr(lambda: (pl.when(self.pl().list.contains(value))
                             .then(self.pl().list.eval(pl.element() == value).list.arg_max().cast(pl.Int64))),
                    py, self.cols)

    def join(self) -> "Expr":
        """A list column's items, as codes (joined by ';' in batch)."""
        a = self.py
        e = Expr(lambda: self.pl().list.join(";"), lambda r: tuple(a(r) or ()), self.cols)
        e.spread = True
        return e


def _wrap(v: Any) -> Expr:
    return v if isinstance(v, Expr) else lit(v)


def col(name: str) -> Expr:
    """The row's column ``name``."""
    e = Expr(lambda: pl.col(name), operator.itemgetter(name), frozenset({name}), lambda g: f"r[{name!r}]")
    e.tgen = lambda g: f"r[{name!r}] is True"
    return e


def lit(value: Any) -> Expr:
    def gen(g: Gen) -> str:
        return g.const(value)
    if isinstance(value, str):
        return Expr(lambda: pl.lit(value, pl.String), lambda r: value, frozenset(), gen)
    if isinstance(value, bool):
        return Expr(lambda: pl.lit(value, pl.Boolean), lambda r: value, frozenset(), gen)
    if isinstance(value, _dt.date):
        return Expr(lambda: pl.lit(value, pl.Date), lambda r: value, frozenset(), gen)
    return Expr(lambda: pl.lit(value), lambda r: value, frozenset(), gen)


def _text(v: Any) -> str:
    if isinstance(v, _dt.date):
        return v.isoformat()
    return str(v)


def fmt(template: str, *args: Any) -> Expr:
    """``template`` with each ``{}`` replaced by an argument's text (null if any argument is null)."""
    parts = [_wrap(a) for a in args]
    pieces = template.split("{}")
    if len(pieces) != len(parts) + 1:
        raise ValueError(f"fmt: {template!r} takes {len(pieces) - 1} arguments, got {len(parts)}")
    fns = [p.py for p in parts]

    def py(r: Row) -> Any:
        out = [pieces[0]]
        for fn, tail in zip(fns, pieces[1:]):
            v = fn(r)
            if v is None:
                return None
            out.append(_text(v))
            out.append(tail)
        return "".join(out)

    def to_pl() -> pl.Expr:
        exprs = []
        for p in parts:
            e = p.pl()
            exprs.append(e)
        return pl.format(template, *exprs) if exprs else pl.lit(template, pl.String)

    def gen(g: Gen) -> str:
        # literal arguments become part of the template's text
        items: list[tuple[str, Any]] = [("s", pieces[0])]
        for p, tail in zip(parts, pieces[1:]):
            if p.gen is not None and not p.cols and isinstance(v := p.py(None), str):
                items.append(("s", v))
            else:
                items.append(("x", p))
            items.append(("s", tail))
        merged: list[tuple[str, Any]] = []
        for kind, v in items:
            if kind == "s" and merged and merged[-1][0] == "s":
                merged[-1] = ("s", merged[-1][1] + v)
            elif kind != "s" or v:
                merged.append((kind, v))
        tests, out = [], []
        text = g.const(_text)
        for kind, v in merged:
            if kind == "s":
                out.append(g.const(v))
            else:
                x = g.tmp()
                tests.append(f"({x} := {v.src(g)}) is None")
                out.append(f"({x} if {x}.__class__ is str else {text}({x}))")
        if not tests:
            return g.const("".join(v for _k, v in merged))
        joined = out[0] if len(out) == 1 else f"''.join(({', '.join(out)}))"
        return f"None if {' or '.join(tests)} else {joined}"
    cols = frozenset().union(*(p.cols for p in parts)) if parts else frozenset()
    return Expr(to_pl, py, cols, gen)


def num(name: str, spec: str) -> Expr:
    """A numeric column printed as ``format(value, spec)`` (per distinct value in batch)."""
    def to_pl() -> pl.Expr:
        def conv(s: pl.Series) -> pl.Series:
            values = [v for v in s.unique().to_list() if v is not None]
            return s.replace_strict({v: format(v, spec) for v in values}, default=None, return_dtype=pl.String)
        return pl.col(name).map_batches(conv, return_dtype=pl.String)
    get = operator.itemgetter(name)
    return Expr(to_pl, lambda r: None if (v := get(r)) is None else format(v, spec), frozenset({name}))


class _When:
    def __init__(self, branches: list[tuple[Expr, Expr]]) -> None:
        self.branches = branches

    def then(self, value: Any) -> "_When":
        cond, _ = self.branches[-1]
        self.branches[-1] = (cond, _wrap(value))
        return self

    def when(self, cond: Expr) -> "_When":
        self.branches.append((cond, lit(None)))
        return self

    def otherwise(self, value: Any) -> Expr:
        other = _wrap(value)
        branches = list(self.branches)
        pys = [(c.py, v.py) for c, v in branches]
        o = other.py

        def py(r: Row) -> Any:
            for c, v in pys:
                if c(r) is True:
                    return v(r)
            return o(r)

        def to_pl() -> Any:
            c0, v0 = branches[0]
            e = pl.when(c0.pl()).then(v0.pl())
            for c, v in branches[1:]:
                e = e.when(c.pl()).then(v.pl())
            return e.otherwise(other.pl())
        def gen(g: Gen) -> str:
            out = other.src(g)
            for c, v in reversed(branches):
                out = f"{v.src(g)} if {c.src(g)} is True else ({out})"
            return out
        cols = other.cols.union(*(c.cols | v.cols for c, v in branches))
        return Expr(to_pl, py, cols, gen)


def when(cond: Expr) -> _When:
    """``when(c).then(a).when(d).then(b).otherwise(x)``, as in Polars."""
    return _When([(cond, lit(None))])


def all_of(*conds: Expr) -> Expr:
    """Every condition holds; the parts are kept so an engine can evaluate some of them early."""
    out = conds[0]
    for c in conds[1:]:
        out = out & c
    out.parts = [p for c in conds for p in (c.parts or [c])]
    return out


_OPS = {"__eq__": "==", "__ne__": "!=", "__lt__": "<", "__le__": "<=", "__gt__": ">", "__ge__": ">=",
        "__add__": "+", "__sub__": "-"}


class Gen:
    """The constants and temporaries of one generated function."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {}
        self._ids: dict[Any, str] = {}
        self._n = 0

    def const(self, value: Any) -> str:
        if value is None or value is True or value is False:
            return repr(value)
        if type(value) in (int, str) and len(repr(value)) < 40:
            return repr(value)
        k = (type(value), id(value))
        name = self._ids.get(k)
        if name is None:
            name = self._ids[k] = f"_k{len(self._ids)}"
            self.env[name] = value
        return name

    def tmp(self) -> str:
        self._n += 1
        return f"_t{self._n}"


def compile_py(body: Callable[[Gen], str], name: str = "expr", params: str = "r") -> Callable[..., Any]:
    """A Python function of one row ``r`` (and any other ``params``) whose body ``body(gen)`` writes
    (statements, 4-space indented)."""
    g = Gen()
    text = body(g)
    code = f"def {name}({params}):\n{text}\n"
    ns: dict[str, Any] = dict(g.env)
    exec(compile(code, f"<medcodes rule {name}>", "exec"), ns)
    fn = ns[name]
    fn.__source__ = code   # type: ignore[attr-defined]
    return fn


def compile_expr(e: Expr) -> Callable[[Row], Any]:
    """One expression as one Python function of a row (the same values as ``e.py``)."""
    return compile_py(lambda g: f"    return {e.src(g)}")


__all__ = ["Expr", "col", "lit", "fmt", "num", "when", "all_of", "compile_py", "compile_expr"]
