"""A safe condition language over a table's columns, parsed with ``ast`` and never evaluated as Python.

Allowed: comparisons (``== != < <= > >=``, chained as in ``0.5 <= motion_flow < 20``), ``and`` / ``or`` /
``not``, parentheses, numbers (a leading ``-``), strings, ``true`` / ``false``, column names,
``col in ['a', 'b']`` / ``not in``, and ``col is null`` / ``col is not null``. Nothing else (calls,
attributes, arithmetic, subscripts) parses. ``parse(text)`` gives a ``Condition``: its top-level
``and`` terms (``terms``, each with its source text, for the per-condition report), the column
names it reads, and ``mask(table)`` -> a boolean array over a ``pyarrow.Table`` / ``RecordBatch``.

Missing values: a comparison with a null cell is not true, so the row is not kept (use ``is null`` to
keep or count such rows). Errors are ``FilterError`` with the position and what is allowed, or the
unknown column and the available ones.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from vidcap.errors import TableError


class FilterError(TableError):
    """A condition that cannot be parsed or evaluated (bad syntax, unknown column, mismatched types)."""


ALLOWED = ("comparisons (== != < <= > >=), and/or/not, parentheses, numbers, 'strings', true/false, "
           "column names, `col in [...]`, `col is null` / `col is not null`")
_COMPARE = {ast.Eq: pc.equal, ast.NotEq: pc.not_equal, ast.Lt: pc.less, ast.LtE: pc.less_equal,
            ast.Gt: pc.greater, ast.GtE: pc.greater_equal}
_NAMED = {"true": True, "false": False, "True": True, "False": False}
_NULL = ("null", "None")


@dataclass(frozen=True)
class Term:
    text: str          # the source text of one top-level ``and`` term
    node: ast.expr


@dataclass(frozen=True)
class Condition:
    text: str
    tree: ast.expr
    terms: tuple[Term, ...]
    columns: tuple[str, ...]

    def check_columns(self, available: list[str]) -> None:
        unknown = [c for c in self.columns if c not in available]
        if unknown:
            raise FilterError(f"--where: unknown column(s) {', '.join(map(repr, unknown))}; the table has: "
                              f"{', '.join(available)}")

    def mask(self, table) -> pa.Array:
        """True where the whole condition holds (null counts as not kept)."""
        return _true(_eval(self.tree, table, self.text))

    def term_masks(self, table) -> list[pa.Array]:
        return [_true(_eval(t.node, table, t.text)) for t in self.terms]


def parse(text: str) -> Condition:
    """The ``Condition`` of ``text``; FilterError naming the problem for anything outside the language."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise FilterError(f"--where: bad syntax at column {exc.offset}: {text!r} ({exc.msg}); allowed: "
                          f"{ALLOWED}") from None
    columns: list[str] = []
    _check(tree, text, columns)
    parts = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    terms = tuple(Term(ast.get_source_segment(text.strip(), p) or ast.unparse(p), p) for p in parts)
    return Condition(text, tree, terms, tuple(dict.fromkeys(columns)))


def _check(node: ast.AST, text: str, columns: list[str]) -> None:
    """Reject every node outside the language; collect the column names."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, (ast.And, ast.Or)):
        for v in node.values:
            _check(v, text, columns)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand, text, columns)
    elif isinstance(node, ast.Compare):
        items = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            left, right = items[i], items[i + 1]
            if isinstance(op, (ast.Is, ast.IsNot)):
                if not (_is_null(right) and isinstance(left, ast.Name)):
                    _bad(node, text, "`is` / `is not` take a column on the left and null on the right")
            elif isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, (ast.List, ast.Tuple, ast.Set)) or not isinstance(left, ast.Name):
                    _bad(node, text, "`in` takes a column on the left and a [list] of values on the right")
                for v in right.elts:   # type: ignore[attr-defined]
                    _literal(v, text)
                items[i + 1] = ast.Constant(None)   # checked: values, not columns
            elif type(op) not in _COMPARE:
                _bad(node, text, "unknown comparison")
        for item in items:
            if not _is_null(item) or isinstance(item, ast.Constant):
                _operand(item, text, columns)
    else:
        _bad(node, text, "not a condition")


def _operand(node: ast.AST, text: str, columns: list[str]) -> None:
    if isinstance(node, ast.Name) and node.id not in _NAMED and node.id not in _NULL:
        columns.append(node.id)
    elif not (isinstance(node, ast.Constant) and node.value is None):
        _literal(node, text)


def _literal(node: ast.AST, text: str):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, (int, float)) and not isinstance(node.operand.value, bool):
        return -node.operand.value
    if isinstance(node, ast.Name) and node.id in _NAMED:
        return _NAMED[node.id]
    _bad(node, text, "not a value (number, 'string', true/false)")


def _is_null(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id in _NULL) or (isinstance(node, ast.Constant) and node.value is None)


def _bad(node: ast.AST, text: str, why: str):
    seg = ast.get_source_segment(text.strip(), node) or ast.unparse(node)
    raise FilterError(f"--where: {why}: {seg!r} (column {getattr(node, 'col_offset', 0) + 1}); allowed: {ALLOWED}")


def _true(mask) -> pa.Array:
    mask = pc.fill_null(mask, False)
    return mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask


def _value(node: ast.AST, table):
    if isinstance(node, ast.Name) and node.id not in _NAMED:
        return table.column(node.id)
    return _literal(node, "")


def _eval(node: ast.AST, table, text: str):
    if isinstance(node, ast.BoolOp):
        fn = pc.and_kleene if isinstance(node.op, ast.And) else pc.or_kleene
        out = _eval(node.values[0], table, text)
        for v in node.values[1:]:
            out = fn(out, _eval(v, table, text))
        return out
    if isinstance(node, ast.UnaryOp):
        return pc.invert(_eval(node.operand, table, text))
    assert isinstance(node, ast.Compare)
    items = [node.left, *node.comparators]
    out = None
    for i, op in enumerate(node.ops):
        left, right = items[i], items[i + 1]
        if isinstance(op, (ast.Is, ast.IsNot)):
            col = table.column(left.id)   # type: ignore[attr-defined]
            part = pc.is_null(col) if isinstance(op, ast.Is) else pc.is_valid(col)
        elif isinstance(op, (ast.In, ast.NotIn)):
            col = table.column(left.id)   # type: ignore[attr-defined]
            values = [_literal(v, text) for v in right.elts]   # type: ignore[attr-defined]
            part = _safe(lambda col=col, values=values: pc.is_in(col, value_set=pa.array(values).cast(col.type)),
                         left, right, table)
            part = pc.if_else(pc.is_null(col), pa.scalar(None, pa.bool_()), part)
            if isinstance(op, ast.NotIn):
                part = pc.invert(part)
        else:
            a, b = _value(left, table), _value(right, table)
            part = _safe(lambda a=a, b=b, op=op: _COMPARE[type(op)](a, b), left, right, table)
        out = part if out is None else pc.and_kleene(out, part)
    return out


def _safe(fn, left, right, table):
    try:
        return fn()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        def show(n):
            if isinstance(n, ast.Name) and n.id not in _NAMED:
                return f"column {n.id!r} ({table.schema.field(n.id).type})"
            return ast.unparse(n)
        raise FilterError(f"--where: cannot compare {show(left)} with {show(right)}: {exc}") from None
