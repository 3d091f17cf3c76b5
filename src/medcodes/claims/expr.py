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
"""

from __future__ import annotations

import datetime as _dt
import operator
from typing import Any, Callable

import polars as pl

Row = dict[str, Any]


class Expr:
    """One node: ``pl()`` builds the Polars expression, ``py`` is the compiled row function."""

    __slots__ = ("pl", "py", "cols", "spread", "parts")

    def __init__(self, to_pl: Callable[[], pl.Expr], py: Callable[[Row], Any], cols: frozenset[str]) -> None:
        self.pl = to_pl
        self.py = py
        self.cols = cols
        self.spread = False          # a list whose items are a finding's codes
        self.parts: list[Expr] = []  # the conjuncts of an all_of()

    # comparisons (null-propagating)
    def _cmp(self, other: Any, op: Callable[[Any, Any], Any], name: str) -> "Expr":
        o = _wrap(other)
        a, b = self.py, o.py

        def py(r: Row) -> Any:
            x, y = a(r), b(r)
            return None if x is None or y is None else op(x, y)
        return Expr(lambda: getattr(self.pl(), name)(o.pl()), py, self.cols | o.cols)

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
        return Expr(lambda: self.pl() & o.pl(), py, self.cols | o.cols)

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
        return Expr(lambda: self.pl() | o.pl(), py, self.cols | o.cols)

    def __invert__(self) -> "Expr":
        a = self.py
        return Expr(lambda: ~self.pl(), lambda r: None if (x := a(r)) is None else not x, self.cols)

    def is_null(self) -> "Expr":
        a = self.py
        return Expr(lambda: self.pl().is_null(), lambda r: a(r) is None, self.cols)

    def not_null(self) -> "Expr":
        a = self.py
        return Expr(lambda: self.pl().is_not_null(), lambda r: a(r) is not None, self.cols)

    def is_in(self, values: list[Any]) -> "Expr":
        a, vs = self.py, frozenset(values)
        return Expr(lambda: self.pl().is_in(list(values)), lambda r: None if (x := a(r)) is None else x in vs,
                    self.cols)

    def matches(self, pattern: str) -> "Expr":
        import re
        rx, a = re.compile(pattern), self.py
        return Expr(lambda: self.pl().str.contains(pattern),
                    lambda r: None if (x := a(r)) is None else rx.search(x) is not None, self.cols)

    def starts_with(self, prefix: str) -> "Expr":
        a = self.py
        return Expr(lambda: self.pl().str.starts_with(prefix),
                    lambda r: None if (x := a(r)) is None else x.startswith(prefix), self.cols)

    def contains(self, value: str) -> "Expr":
        """A list column holds ``value``."""
        a = self.py
        return Expr(lambda: self.pl().list.contains(value), lambda r: None if (x := a(r)) is None else value in x,
                    self.cols)

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
    return Expr(lambda: pl.col(name), operator.itemgetter(name), frozenset({name}))


def lit(value: Any) -> Expr:
    if isinstance(value, str):
        return Expr(lambda: pl.lit(value, pl.String), lambda r: value, frozenset())
    if isinstance(value, bool):
        return Expr(lambda: pl.lit(value, pl.Boolean), lambda r: value, frozenset())
    if isinstance(value, _dt.date):
        return Expr(lambda: pl.lit(value, pl.Date), lambda r: value, frozenset())
    return Expr(lambda: pl.lit(value), lambda r: value, frozenset())


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
    cols = frozenset().union(*(p.cols for p in parts)) if parts else frozenset()
    return Expr(to_pl, py, cols)


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
        cols = other.cols.union(*(c.cols | v.cols for c, v in branches))
        return Expr(to_pl, py, cols)


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


__all__ = ["Expr", "col", "lit", "fmt", "num", "when", "all_of"]
