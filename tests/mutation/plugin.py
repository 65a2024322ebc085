"""Loaded (``-p tests.mutation.plugin``) into every pytest run of the mutation runner.

* Hypothesis runs derandomized, without deadlines and without its example database, so a
  mutant's verdict does not depend on an earlier run, on the machine's load, or on luck.
* Tests named in STREAMIFY_MUTATION_FIRST (comma-separated substrings of node ids) run first.
* With STREAMIFY_MUTATION_ORACLE (a file), the answers of the reference validator that
  tests/unit/test_validation.py cross-checks against (protovalidate, third-party, never mutated)
  are remembered across runs: the same random messages get the same raw violations without
  evaluating their CEL again, which is most of that file's 45 s. Everything of ours, including
  the formatting of the reference's field paths, still runs in every mutant.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Any

from hypothesis import settings

settings.register_profile(
    "mutation", database=None, deadline=None, derandomize=True, print_blob=False
)
settings.load_profile("mutation")


class _RememberingValidator:
    """Stands in for the test module's protovalidate.Validator: collect_violations, memoized."""

    def __init__(self, validator: Any, path: str) -> None:
        from buf.validate import validate_pb2

        self._validator, self._path, self._violation = validator, path, validate_pb2.Violation
        try:
            with open(path, "rb") as f:
                self._answers: dict[tuple[str, bytes], list[bytes]] = pickle.load(f)
        except FileNotFoundError:
            self._answers = {}
        self.new = 0

    def collect_violations(self, message: Any) -> list[Any]:
        key = (message.DESCRIPTOR.full_name, message.SerializeToString(deterministic=True))
        raw = self._answers.get(key)
        if raw is None:
            raw = [v.proto.SerializeToString() for v in self._validator.collect_violations(message)]
            self._answers[key] = raw
            self.new += 1
        return [_Violation(self._violation.FromString(b)) for b in raw]

    def save(self) -> None:
        if self.new:
            tmp = f"{self._path}.{os.getpid()}"
            with open(tmp, "wb") as f:
                pickle.dump(self._answers, f)
            os.replace(tmp, self._path)


class _Violation:
    def __init__(self, proto: Any) -> None:
        self.proto = proto


_remembering: _RememberingValidator | None = None


def pytest_collection_modifyitems(session, config, items):
    global _remembering
    first = [s for s in os.environ.get("STREAMIFY_MUTATION_FIRST", "").split(",") if s]
    if first:
        items.sort(key=lambda item: not any(s in item.nodeid for s in first))
    oracle = os.environ.get("STREAMIFY_MUTATION_ORACLE")
    module = sys.modules.get("tests.unit.test_validation")
    if oracle and module is not None and hasattr(module, "_reference"):
        _remembering = _RememberingValidator(module._reference, oracle)
        module._reference = _remembering


def pytest_sessionfinish(session, exitstatus):
    if _remembering is not None and exitstatus == 0:
        _remembering.save()  # only a passing run's answers (the baseline's, in practice)
