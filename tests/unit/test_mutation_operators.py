"""The mutation runner's operators (tests/mutation): each mutant is one small edit, in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutation.operators import generate, hand_written
from tests.mutation.targets import AUDIT, TARGETS

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]

SOURCE = '''"""Doc."""
LIMIT = 10  # a comment that must survive every mutant
ALLOWED = frozenset({"a", "b"})


@dataclass(frozen=True)
class Box:
    size: int = 3


def check(x: int, names: dict[str, int]) -> bool:
    if not 0 <= x < LIMIT and x != -(-x // 2):
        raise ValueError(f"bad {x + 1}")
    return make(x, strict=True) or x in ALLOWED
'''


def edits() -> set[tuple[int, str, str]]:
    out = set()
    for m in generate("t", SOURCE):
        old, new = [], []
        for a, b in zip(SOURCE.splitlines(), m.source.splitlines(), strict=True):
            if a != b:
                old.append(a.strip())
                new.append(b.strip())
        assert len(old) == 1, m  # one line changed, every other line byte for byte
        out.add((m.line, m.operator, new[0]))
    return out


def test_each_operator_makes_its_one_line_edit():
    got = edits()
    expected = {
        (2, "const", "LIMIT = 11  # a comment that must survive every mutant"),
        (2, "const", "LIMIT = 9  # a comment that must survive every mutant"),
        (3, "entry", 'ALLOWED = frozenset({"b"})'),
        (3, "entry", 'ALLOWED = frozenset({"a"})'),
        (12, "bool", "if 0 <= x < LIMIT and x != -(-x // 2):"),
        (12, "compare", "if not 0 < x < LIMIT and x != -(-x // 2):"),
        (12, "compare", "if not 0 <= x <= LIMIT and x != -(-x // 2):"),
        (12, "compare", "if not 0 <= x < LIMIT and x == -(-x // 2):"),
        (12, "arith", "if not 0 <= x < LIMIT and x != (-x // 2):"),
        (12, "arith", "if not 0 <= x < LIMIT and x != -(x // 2):"),
        (12, "arith", "if not 0 <= x < LIMIT and x != -(-x / 2):"),
        (12, "bool", "if not 0 <= x < LIMIT or x != -(-x // 2):"),
        (12, "bool", "if not 0 <= x < LIMIT:"),
        (12, "bool", "if x != -(-x // 2):"),
        (14, "keyword", "return make(x) or x in ALLOWED"),
        (14, "bool", "return make(x, strict=False) or x in ALLOWED"),
        (14, "compare", "return make(x, strict=True) or x not in ALLOWED"),
    }
    assert expected <= got
    assert (8, "const", "size: int = 4") in got
    assert 6 not in {line for line, _, _ in got}  # the decorator is left alone
    assert not any("bad" in new for _, _, new in got)  # so are f-strings
    assert not any("dict[str" in new for _, _, new in got)  # and annotations


def test_the_audit_mutants_still_match_the_code():
    by_name = {t.name: t for t in TARGETS}
    for a in AUDIT:
        source = (ROOT / by_name[a.target].path).read_text()
        hand_written(
            a.target, source, a.old, a.new, a.label, a.occurrence
        )  # raises if the code moved on


def test_a_scope_limits_the_mutants_to_those_functions():
    source = "def a():\n    return 1\n\n\nclass C:\n    def b(self):\n        return 2\n"
    assert {m.line for m in generate("t", source, ("C.b",))} == {7}
    assert {m.line for m in generate("t", source)} == {2, 7}
