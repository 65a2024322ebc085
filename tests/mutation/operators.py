"""Mutation operators: every small, realistic bug one AST edit can put into a module.

Each mutant is the module's source with ONE edit spliced in at the edited node's position, so
a mutant's diff is the one line (or call) that changed and everything else (comments, layout)
stays byte for byte. The operators:

* ``compare``: ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``, ``in`` <-> ``not in``,
  ``is`` <-> ``is not`` (one comparison at a time);
* ``arith``: ``+`` <-> ``-``, ``*`` <-> ``/``, ``//`` -> ``/``, ``%`` -> ``//``, ``**`` -> ``*``,
  ``<<`` <-> ``>>``, ``|`` <-> ``&`` (also in ``+=`` and friends), a unary minus dropped;
* ``const``: an int or float constant + 1 and - 1;
* ``bool``: ``not`` dropped, ``and`` <-> ``or``, one operand of ``and``/``or`` dropped,
  ``True`` <-> ``False``;
* ``entry``: one element of a set literal, or one entry of a dict literal, removed;
* ``keyword``: one keyword argument of a call dropped (the callee's default applies).

Not mutated: strings (messages), f-strings, docstrings, type annotations, decorators.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field

_COMPARE = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_ARITH = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}
_SYMBOL = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.And: "and",
    ast.Or: "or",
}


@dataclass(frozen=True)
class Mutant:
    target: str  # the target's name, e.g. "upload/parts"
    line: int  # 1-based line of the edit in the original source
    operator: str  # compare, arith, const, bool, entry, keyword, or "audit" (hand-written)
    description: str  # e.g. "`<` -> `<=`"
    source: str  # the whole mutated module
    labels: tuple[str, ...] = field(default=())  # the audit's names for this mutant, if any

    def diff(self, original: str, path: str) -> str:
        return "".join(
            difflib.unified_diff(
                original.splitlines(keepends=True),
                self.source.splitlines(keepends=True),
                f"a/{path}",
                f"b/{path}",
                n=1,
            )
        )


class _Source:
    """The module's text as bytes, addressed the way ast positions are (line, UTF-8 column)."""

    def __init__(self, text: str) -> None:
        self.data = text.encode()
        self.line_starts = [0]
        for i, byte in enumerate(self.data):
            if byte == 0x0A:
                self.line_starts.append(i + 1)

    def offset(self, line: int, col: int) -> int:
        return self.line_starts[line - 1] + col

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]

    def text(self, a: int, b: int) -> str:
        return self.data[a:b].decode()

    def splice(self, a: int, b: int, new: str) -> str:
        return (self.data[:a] + new.encode() + self.data[b:]).decode()


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes never mutated: type annotations, f-strings, decorators."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        roots: list[ast.AST | None] = []
        if isinstance(node, ast.arg):
            roots.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        elif isinstance(node, ast.JoinedStr):  # f-strings: messages and names, not logic
            roots.append(node)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            roots.extend(node.decorator_list)  # @dataclass(frozen=True) and the like
        for root in roots:
            if root is not None:
                skip.update(id(n) for n in ast.walk(root))
    return skip


def _scoped_nodes(tree: ast.Module, scope: tuple[str, ...] | None) -> Iterator[ast.AST]:
    """Every node of the module, or only those inside the functions named in `scope`
    ("Class.method" or "function")."""
    if scope is None:
        yield from ast.walk(tree)
        return

    def visit(node: ast.AST, prefix: str) -> Iterator[ast.AST]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                if name in scope:
                    yield from ast.walk(child)
                else:
                    yield from visit(child, f"{name}.")

    yield from visit(tree, "")


def _operator_at(src: _Source, a: int, b: int, symbol: str) -> tuple[int, int] | None:
    """Where `symbol` is in the gap [a, b) between two operands (only brackets, spaces and the
    operator are there); None if it cannot be found exactly once."""
    gap = src.text(a, b)
    core = gap.strip(" \t\r\n\\()[]")
    if " ".join(core.split()) != symbol or gap.count(core) != 1:
        return None
    start = a + len(gap[: gap.index(core)].encode())
    return start, start + len(core.encode())


def _remove_item(src: _Source, items: list[tuple[int, int]], i: int) -> tuple[int, int]:
    """The byte range that removes item i (and one separating comma) from a list of items."""
    if i + 1 < len(items):
        return items[i][0], items[i + 1][0]
    if i > 0:
        return items[i - 1][1], items[i][1]
    a, b = items[i]
    rest = src.text(b, len(src.data))
    stripped = rest.lstrip()
    if stripped.startswith(","):
        b += len(rest[: len(rest) - len(stripped) + 1].encode())
    return a, b


Edit = tuple[str, str, int, str]  # operator, description, byte offset of the edit, mutated source


def _edits(src: _Source, node: ast.AST) -> Iterator[Edit]:
    """Every mutant of one node."""

    def replace(operator: str, what: str, a: int, b: int, new: str) -> Edit:
        return operator, what, a, src.splice(a, b, new)

    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            old, new = _SYMBOL[type(op)], _SYMBOL[_COMPARE[type(op)]]
            where = _operator_at(src, src.end(operands[i]), src.start(operands[i + 1]), old)
            if where:
                yield replace("compare", f"`{old}` -> `{new}`", *where, new)
    elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _ARITH:
        left, right = (
            (node.left, node.right) if isinstance(node, ast.BinOp) else (node.target, node.value)
        )
        suffix = "" if isinstance(node, ast.BinOp) else "="
        old, new = _SYMBOL[type(node.op)] + suffix, _SYMBOL[_ARITH[type(node.op)]] + suffix
        where = _operator_at(src, src.end(left), src.start(right), old)
        if where:
            yield replace("arith", f"`{old}` -> `{new}`", *where, new)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            return  # a negative literal: `const` covers it
        a, b = src.start(node), src.start(node.operand)
        head = src.text(a, b)  # the operator and any brackets before the operand
        symbol = "not" if isinstance(node.op, ast.Not) else "-"
        cut = head.index(symbol)
        kept = head[:cut] + head[cut + len(symbol) :].lstrip(" " if symbol == "not" else "")
        if symbol == "not":
            yield replace("bool", "`not` dropped", a, b, kept)
        else:
            yield replace("arith", "unary `-` dropped", a, b, kept)
    elif isinstance(node, ast.BoolOp):
        symbol, other = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        pairs = zip(node.values, node.values[1:], strict=False)
        gaps = [_operator_at(src, src.end(x), src.start(y), symbol) for x, y in pairs]
        if all(gaps):
            data = src.data
            for a, b in reversed(gaps):  # type: ignore[misc]
                data = data[:a] + other.encode() + data[b:]
            yield "bool", f"`{symbol}` -> `{other}`", gaps[0][0], data.decode()  # type: ignore[index]
        items = [(src.start(v), src.end(v)) for v in node.values]
        for i in range(len(items)):
            what = f"operand `{src.text(*items[i])}` of `{symbol}` dropped"
            yield replace("bool", what, *_remove_item(src, items, i), "")
    elif isinstance(node, ast.Constant) and not isinstance(node.value, str | bytes):
        a, b = src.start(node), src.end(node)
        if isinstance(node.value, bool):
            yield replace(
                "bool", f"`{node.value}` -> `{not node.value}`", a, b, str(not node.value)
            )
        elif isinstance(node.value, int | float):
            for delta in (1, -1):
                new = repr(node.value + delta)
                yield replace("const", f"`{src.text(a, b)}` -> `{new}`", a, b, new)
    elif isinstance(node, ast.Set):
        items = [(src.start(e), src.end(e)) for e in node.elts]
        for i in range(len(items)):
            what = f"`{src.text(*items[i])}` removed from the set"
            if len(items) == 1:
                yield replace("entry", what, src.start(node), src.end(node), "set()")
            else:
                yield replace("entry", what, *_remove_item(src, items, i), "")
    elif isinstance(node, ast.Dict) and None not in node.keys:
        keys = [(src.start(k), src.end(k)) for k in node.keys]  # type: ignore[arg-type]
        items = [(k[0], src.end(v)) for k, v in zip(keys, node.values, strict=True)]
        for i in range(len(items)):
            what = f"entry `{src.text(*keys[i])}` removed from the dict"
            if len(items) == 1:
                yield replace("entry", what, src.start(node), src.end(node), "{}")
            else:
                yield replace("entry", what, *_remove_item(src, items, i), "")
    elif isinstance(node, ast.Call):
        items = sorted([(src.start(x), src.end(x)) for x in [*node.args, *node.keywords]])
        for k in node.keywords:
            if k.arg is not None:
                i = items.index((src.start(k), src.end(k)))
                yield replace(
                    "keyword", f"keyword `{k.arg}=` dropped", *_remove_item(src, items, i), ""
                )


def generate(target: str, source: str, scope: tuple[str, ...] | None = None) -> list[Mutant]:
    """Every mutant of `source` (only inside the functions of `scope`, if given), in source
    order, each one parsing and differing from the original; duplicates removed."""
    tree = ast.parse(source)
    src = _Source(source)
    skip = _skipped_nodes(tree)
    original = ast.dump(tree)
    seen: set[str] = set()
    out: list[Mutant] = []
    for node in _scoped_nodes(tree, scope):
        if id(node) in skip or not hasattr(node, "lineno"):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstrings
        for operator, description, at, mutated in _edits(src, node):
            try:
                changed = ast.dump(ast.parse(mutated)) != original
            except SyntaxError:
                continue
            if changed and mutated not in seen:
                seen.add(mutated)
                line = src.data[:at].count(b"\n") + 1
                out.append(Mutant(target, line, operator, description, mutated))
    return sorted(out, key=lambda m: m.line)


def hand_written(
    target: str, source: str, old: str, new: str, label: str, occurrence: int = 1
) -> Mutant:
    """A mutant the audit named, as a text replacement of the `occurrence`-th `old`."""
    at = -1
    for _ in range(occurrence):
        at = source.find(old, at + 1)
        if at < 0:
            raise LookupError(
                f"{target}: audit mutant {label!r}: {old!r} occurs fewer than {occurrence} times"
            )
    line = source[:at].count("\n") + 1
    mutated = source[:at] + new + source[at + len(old) :]
    ast.parse(mutated)
    return Mutant(target, line, "audit", label, mutated, labels=(label,))
