"""Request validation from the protovalidate annotations in our protos, without CEL on the hot path.

The reference `protovalidate` evaluates every rule as CEL (~200 µs for a GetVideoRequest). Most of
our rules are simple (lengths, patterns, ranges), so they are read from the message descriptors and
compiled once per message type into plain Python checks. A type that uses anything not handled here
(CEL expressions, predefined or well-known-format rules, Duration/Timestamp/bytes rules, ...) is
validated by protovalidate instead, decided when the type is compiled. Results, wording and rule
ids mirror protovalidate's; tests/unit/test_validation.py cross-checks the two on random messages.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, cast

import protovalidate
from buf.validate import validate_pb2
from google.protobuf import unknown_fields
from google.protobuf.descriptor import Descriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message

__all__ = ["FieldViolation", "validate"]


@dataclass(frozen=True)
class FieldViolation:
    field: str  # path like "video.title", "part_numbers[2]", 'headers["k"]'; "" for the message
    description: str  # e.g. "must be at most 200 characters"
    rule_id: str  # e.g. "string.max_len", "required", "failure_reason_required"

    def __str__(self) -> str:
        return f"{self.field}: {self.description}" if self.field else self.description


def validate(message: Message) -> list[FieldViolation]:
    """Returns the rule violations of `message`; an empty list means it is valid."""
    desc = cast(Descriptor, message.DESCRIPTOR)  # or upb's C class of the same interface
    plan = _PLANS.get(desc.full_name)
    if plan is None:
        plan = _compile(desc)
    return plan.run(message)


Check = Callable[[Message, list[FieldViolation]], None]
# Returns None when the value passes, else (rule_id, description).
ValueTest = Callable[[Any], tuple[str, str] | None]

_reference = protovalidate.Validator()  # type: ignore[no-untyped-call]  # its __init__ is unannotated
_PLANS: dict[str, _Plan] = {}
_LOCK = threading.Lock()
_ZERO = validate_pb2.IGNORE_IF_ZERO_VALUE
_ALWAYS = validate_pb2.IGNORE_ALWAYS


class _Unsupported(Exception):
    """A rule the fast path does not implement: its message type goes to protovalidate."""


class _Plan:
    __slots__ = ("checks", "fallback", "ready")

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.fallback = False
        self.ready = False

    def run(self, message: Message) -> list[FieldViolation]:
        if self.fallback:
            return _reference_violations(message)
        out: list[FieldViolation] = []
        for check in self.checks:
            check(message, out)
        return out


def _reference_violations(message: Message) -> list[FieldViolation]:
    return [
        FieldViolation(field_path_string(v.proto.field), v.proto.message, v.proto.rule_id)
        for v in _reference.collect_violations(message)
    ]


def field_path_string(path: validate_pb2.FieldPath) -> str:
    """Prints a protovalidate FieldPath like protovalidate-go does: `parts[2].etag`, `m["k"]`."""
    names = []
    for element in path.elements:
        subscript = element.WhichOneof("subscript")
        key = "" if subscript is None else _subscript(getattr(element, subscript))
        names.append(element.field_name + key)
    return ".".join(names)


def _subscript(key: object) -> str:
    if isinstance(key, str):
        return '["' + key.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    if isinstance(key, bool):
        return "[true]" if key else "[false]"
    return f"[{key}]"


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if path else prefix


def _extend(out: list[FieldViolation], prefix: str, violations: Iterable[FieldViolation]) -> None:
    out.extend(replace(v, field=_join(prefix, v.field)) for v in violations)


# ---------------------------------------------------------------------------------------------
# Compilation: descriptor options -> checks


def _compile(desc: Descriptor) -> _Plan:
    # Plans are published only when complete, so other threads never see one half built.
    with _LOCK:
        building: dict[str, _Plan] = {}
        plan = _plan(desc, building)
        _PLANS.update(building)
        return plan


def _plan(desc: Descriptor, building: dict[str, _Plan]) -> _Plan:
    plan = _PLANS.get(desc.full_name) or building.get(desc.full_name)
    if plan is None:
        plan = building[desc.full_name] = _Plan()  # registered first: message types can recurse
        try:
            plan.checks = _message_checks(desc, building)
        except _Unsupported:
            plan.fallback = True
        plan.ready = True
    return plan


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _only(rules: Message, allowed: Iterable[str]) -> None:
    """Raises _Unsupported if `rules` sets anything outside `allowed` (incl. extensions)."""
    allowed = set(allowed)
    for fd, _ in rules.ListFields():
        if fd.is_extension or fd.name not in allowed:
            raise _Unsupported(f"{rules.DESCRIPTOR.name}.{fd.name}")
    if len(unknown_fields.UnknownFieldSet(rules)):
        raise _Unsupported(f"unknown fields in {rules.DESCRIPTOR.name}")


def _message_checks(desc: Descriptor, building: dict[str, _Plan]) -> list[Check]:
    checks: list[Check] = []
    oneof_rule_fields: set[str] = set()
    options = desc.GetOptions()
    if options.HasExtension(validate_pb2.message):
        message_rules = options.Extensions[validate_pb2.message]
        _only(message_rules, {"oneof"})  # message-level CEL goes to protovalidate
        for rule in message_rules.oneof:
            checks.append(_message_oneof_check(desc, rule))
            oneof_rule_fields.update(rule.fields)
    for oneof in desc.oneofs:
        if oneof.GetOptions().HasExtension(validate_pb2.oneof):
            oneof_rules = oneof.GetOptions().Extensions[validate_pb2.oneof]
            _only(oneof_rules, {"required"})
            if oneof_rules.required:
                checks.append(_oneof_required_check(oneof))

    for field in desc.fields:
        has_rules = field.GetOptions().HasExtension(validate_pb2.field)
        rules = field.GetOptions().Extensions[validate_pb2.field]
        ignore = rules.ignore
        if field.name in oneof_rule_fields and not rules.HasField("ignore"):
            ignore = _ZERO  # members of a message oneof rule may be unset
        if ignore == _ALWAYS:
            continue
        if has_rules:
            checks.append(_field_check(field, rules, ignore))
        if field.message_type is None or rules.repeated.items.ignore == _ALWAYS:
            continue
        sub_desc: Descriptor | None = field.message_type
        if _is_map(field):
            sub_desc = field.message_type.fields_by_name["value"].message_type
        if sub_desc is None:
            continue
        sub = _plan(sub_desc, building)
        if sub.fallback or sub.checks or not sub.ready:  # not ready: a recursive type
            checks.append(_submessage_check(field, sub))
    return checks


def _message_oneof_check(desc: Descriptor, rule: validate_pb2.MessageOneofRule) -> Check:
    names = list(rule.fields)
    if not names or len(set(names)) != len(names) or not set(names) <= set(desc.fields_by_name):
        raise _Unsupported("invalid message oneof rule")  # protovalidate reports the error
    fields = [desc.fields_by_name[n] for n in names]
    listed, required = ", ".join(names), rule.required

    def check(message: Message, out: list[FieldViolation]) -> None:
        count = sum(1 for f in fields if not _is_empty(message, f))
        if count > 1:
            out.append(FieldViolation("", f"only one of {listed} can be set", "message.oneof"))
        if required and count == 0:
            out.append(FieldViolation("", f"one of {listed} must be set", "message.oneof"))

    return check


def _oneof_required_check(oneof: OneofDescriptor) -> Check:
    name = oneof.name

    def check(message: Message, out: list[FieldViolation]) -> None:
        if message.WhichOneof(name) is None:
            out.append(FieldViolation(name, "exactly one field is required in oneof", "required"))

    return check


def _is_empty(message: Message, field: FieldDescriptor) -> bool:
    if field.has_presence:
        return not message.HasField(field.name)
    value = getattr(message, field.name)
    return len(value) == 0 if field.is_repeated else value == field.default_value


def _submessage_check(field: FieldDescriptor, sub: _Plan) -> Check:
    name = field.name
    if _is_map(field):

        def check_map(message: Message, out: list[FieldViolation]) -> None:
            for key, value in getattr(message, name).items():
                _extend(out, name + _subscript(key), sub.run(value))

        return check_map
    if field.is_repeated:

        def check_list(message: Message, out: list[FieldViolation]) -> None:
            for i, value in enumerate(getattr(message, name)):
                _extend(out, f"{name}[{i}]", sub.run(value))

        return check_list

    def check(message: Message, out: list[FieldViolation]) -> None:
        if message.HasField(name):
            _extend(out, name, sub.run(getattr(message, name)))

    return check


_T = FieldDescriptor
_KINDS = {
    _T.TYPE_STRING: "string",
    _T.TYPE_BOOL: "bool",
    _T.TYPE_ENUM: "enum",
    _T.TYPE_FLOAT: "float",
    _T.TYPE_DOUBLE: "double",
    _T.TYPE_INT32: "int32",
    _T.TYPE_INT64: "int64",
    _T.TYPE_UINT32: "uint32",
    _T.TYPE_UINT64: "uint64",
    _T.TYPE_SINT32: "sint32",
    _T.TYPE_SINT64: "sint64",
    _T.TYPE_FIXED32: "fixed32",
    _T.TYPE_FIXED64: "fixed64",
    _T.TYPE_SFIXED32: "sfixed32",
    _T.TYPE_SFIXED64: "sfixed64",
}


def _field_check(field: FieldDescriptor, rules: validate_pb2.FieldRules, ignore: int) -> Check:
    kind = rules.WhichOneof("type")
    # Field-level `cel` makes the type go to protovalidate.
    _only(rules, {"required", "ignore", kind or "required"})
    repeated, is_map = field.is_repeated, _is_map(field)
    expected = "map" if is_map else "repeated" if repeated else _KINDS.get(field.type)
    if kind is not None and kind != expected:
        raise _Unsupported(f"{kind} rules on {field.full_name}")  # e.g. wrappers, Duration, bytes

    name, required, presence = field.name, rules.required, field.has_presence
    ignore_empty = ignore == _ZERO or presence
    zero = None if repeated or presence else field.default_value
    tests: list[ValueTest] = []
    items: Callable[[Any, list[FieldViolation]], None] | None = None
    if kind == "repeated":
        tests = _size_tests(kind, rules.repeated, field)
        if rules.repeated.HasField("items"):
            items = _items_check(name, field, rules.repeated.items)
    elif kind == "map":
        tests = _size_tests(kind, rules.map, field)
        items = _entries_check(field, rules.map)
    elif kind is not None:
        tests = _value_tests(kind, getattr(rules, kind), field)

    def check(message: Message, out: list[FieldViolation]) -> None:
        value = getattr(message, name)
        if (not message.HasField(name)) if presence else (not value if repeated else value == zero):
            if required:
                out.append(FieldViolation(name, "value is required", "required"))
                return
            if ignore_empty:
                return
        for test in tests:
            failure = test(value)
            if failure is not None:
                out.append(FieldViolation(name, failure[1], failure[0]))
        if items is not None:
            items(value, out)

    return check


def _element_tests(
    field: FieldDescriptor, rules: validate_pb2.FieldRules
) -> tuple[list[ValueTest], bool]:
    """Tests for list items or map keys/values, and whether zero values are skipped."""
    kind = rules.WhichOneof("type")
    # protovalidate ignores `required` on items: leave such odd rules to it.
    _only(rules, {"ignore", kind or "ignore"})
    if kind is not None and kind != _KINDS.get(field.type):
        raise _Unsupported(f"{kind} item rules on {field.full_name}")
    if kind == "enum" and rules.enum.defined_only:
        raise _Unsupported("protovalidate-python does not check enum.defined_only on items")
    if rules.ignore == _ALWAYS or kind is None:
        return [], False
    return _value_tests(kind, getattr(rules, kind), field), rules.ignore == _ZERO


def _items_check(
    name: str, field: FieldDescriptor, rules: validate_pb2.FieldRules
) -> Callable[[Any, list[FieldViolation]], None] | None:
    tests, skip_zero = _element_tests(field, rules)
    if not tests:
        return None

    def check(values: Any, out: list[FieldViolation]) -> None:
        for i, item in enumerate(values):
            if skip_zero and not item:
                continue
            for test in tests:
                failure = test(item)
                if failure is not None:
                    out.append(FieldViolation(f"{name}[{i}]", failure[1], failure[0]))

    return check


def _size_tests(kind: str, rules: Message, field: FieldDescriptor) -> list[ValueTest]:
    """RepeatedRules / MapRules counts and uniqueness (items, keys and values are compiled apart)."""
    _only(rules, {*_SIZE_RULES, "unique", "items", "keys", "values"})
    tests: list[ValueTest] = []
    for fd, rule in rules.ListFields():
        if fd.name in _SIZE_RULES:
            make, description = _SIZE_RULES[fd.name]
            tests.append(_test(f"{kind}.{fd.name}", description.format(rule), make(rule)))
        elif fd.name == "unique" and rule:
            if field.message_type is not None:
                raise _Unsupported("unique on messages")
            description = "repeated value must contain unique items"
            tests.append(_test("repeated.unique", description, _has_duplicates))
    return tests


def _entries_check(
    field: FieldDescriptor, rules: validate_pb2.MapRules
) -> Callable[[Any, list[FieldViolation]], None] | None:
    assert field.message_type is not None  # a map field: its entry type
    entry = field.message_type.fields_by_name
    key_tests, skip_zero_key = _element_tests(entry["key"], rules.keys)
    value_tests, skip_zero_value = _element_tests(entry["value"], rules.values)
    if not key_tests and not value_tests:
        return None
    name = field.name

    def check(mapping: Any, out: list[FieldViolation]) -> None:
        for key, value in mapping.items():
            # Same order as protovalidate: the value's violations, then the key's.
            for tests_, item, skip in (
                (value_tests, value, skip_zero_value),
                (key_tests, key, skip_zero_key),
            ):
                if skip and not item:
                    continue
                for test in tests_:
                    failure = test(item)
                    if failure is not None:
                        out.append(FieldViolation(name + _subscript(key), failure[1], failure[0]))

    return check


# ---------------------------------------------------------------------------------------------
# Scalar rules. Descriptions and ids follow the CEL of the rules in buf/validate/validate.proto.


def _test(rule_id: str, description: str, failed: Callable[[Any], bool]) -> ValueTest:
    failure = (rule_id, description)
    return lambda value: failure if failed(value) else None


def _lt_len(n: int) -> Callable[[Any], bool]:
    return lambda value: len(value) < n


def _gt_len(n: int) -> Callable[[Any], bool]:
    return lambda value: len(value) > n


def _has_duplicates(values: Any) -> bool:
    return len(set(values)) != len(values)


def _fmt(value: Any) -> str:
    """Formats a rule value like CEL's `%s`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return f"{value:g}"
    if isinstance(value, str | int):
        return str(value)
    return "[" + ", ".join(_fmt(v) for v in value) + "]"


def _pattern_failed(pattern: str) -> Callable[[str], bool]:
    search = _compile_re2(pattern).search
    return lambda value: search(value) is None


# rule name -> (predicate factory taking the rule value, description template)
_Rule = tuple[Callable[[Any], Callable[[Any], bool]], str]
_SIZE_RULES: dict[str, _Rule] = {
    "min_items": (_lt_len, "must contain at least {} item(s)"),
    "max_items": (_gt_len, "must contain no more than {} item(s)"),
    "min_pairs": (_lt_len, "map must be at least {} entries"),
    "max_pairs": (_gt_len, "map must be at most {} entries"),
}
_STRING_RULES: dict[str, _Rule] = {
    "const": (lambda r: lambda v: v != r, "must equal `{}`"),
    "len": (lambda r: lambda v: len(v) != r, "must be {} characters"),
    "min_len": (_lt_len, "must be at least {} characters"),
    "max_len": (_gt_len, "must be at most {} characters"),
    "len_bytes": (lambda r: lambda v: len(v.encode()) != r, "must be {} bytes"),
    "min_bytes": (lambda r: lambda v: len(v.encode()) < r, "must be at least {} bytes"),
    "max_bytes": (lambda r: lambda v: len(v.encode()) > r, "must be at most {} bytes"),
    "pattern": (_pattern_failed, "does not match regex pattern `{}`"),
    "prefix": (lambda r: lambda v: not v.startswith(r), "does not have prefix `{}`"),
    "suffix": (lambda r: lambda v: not v.endswith(r), "does not have suffix `{}`"),
    "contains": (lambda r: lambda v: r not in v, "does not contain substring `{}`"),
    "not_contains": (lambda r: lambda v: r in v, "contains substring `{}`"),
}


# The failure tests of `in` and `not_in`: the rule's list is made a set once, when compiled.
def _not_among(values: Iterable[Any]) -> Callable[[Any], bool]:
    allowed = frozenset(values)
    return lambda value: value not in allowed


def _among(values: Iterable[Any]) -> Callable[[Any], bool]:
    banned = frozenset(values)
    return lambda value: value in banned


_LIST_RULES: dict[str, _Rule] = {
    "in": (_not_among, "must be in list {}"),
    "not_in": (_among, "must not be in list {}"),
}
_CONST_RULE: _Rule = (lambda r: lambda v: v != r, "must equal {}")
_NO_OPS = {"example", "strict"}  # `strict` only refines well-known regexes, which fall back
_BOUND_WORDS = {
    "gt": "greater than",
    "gte": "greater than or equal to",
    "lt": "less than",
    "lte": "less than or equal to",
}


def _value_tests(kind: str, rules: Message, field: FieldDescriptor) -> list[ValueTest]:
    """Compiles StringRules, Int32Rules, ..., EnumRules, BoolRules into tests, in protovalidate's order."""
    table = {**_LIST_RULES, "const": _CONST_RULE, **(_STRING_RULES if kind == "string" else {})}
    tests: list[ValueTest] = []
    defined_only = False
    if len(unknown_fields.UnknownFieldSet(rules)):
        raise _Unsupported(f"unknown {kind} rules")
    for fd, rule in rules.ListFields():
        name = fd.name
        if fd.is_extension:
            raise _Unsupported(f"predefined rule {fd.full_name}")
        if name in _NO_OPS:
            continue
        if kind == "enum" and name == "defined_only":
            defined_only = rule
        elif name in ("gt", "gte", "lt", "lte") and kind not in ("string", "enum", "bool"):
            # One test for both bounds, at the place protovalidate reports it.
            lower = rules.WhichOneof("greater_than")
            if name == lower or lower is None:
                tests.append(_range_test(kind, rules))
        elif name == "finite" and kind in ("float", "double"):
            if rule:
                tests.append(_test(f"{kind}.finite", "must be finite", _not_finite))
        elif name in table:
            make, description = table[name]
            tests.append(_test(f"{kind}.{name}", description.format(_fmt(rule)), make(rule)))
        else:
            raise _Unsupported(f"{kind}.{name}")
    if defined_only:
        assert field.enum_type is not None  # enum rules are on enum fields
        defined = frozenset(field.enum_type.values_by_number)
        description = "value must be one of the defined enum values"
        tests.append(_test("enum.defined_only", description, lambda v: v not in defined))
    return tests


def _not_finite(value: float) -> bool:
    return not math.isfinite(value)


def _range_test(kind: str, rules: Any) -> ValueTest:
    lower, upper = rules.WhichOneof("greater_than"), rules.WhichOneof("less_than")
    lo = getattr(rules, lower) if lower else None
    hi = getattr(rules, upper) if upper else None
    below: Callable[[Any], bool] = (lambda v: v <= lo) if lower == "gt" else (lambda v: v < lo)
    above: Callable[[Any], bool] = (lambda v: v >= hi) if upper == "lt" else (lambda v: v > hi)
    low_words = f"{_BOUND_WORDS[lower]} {_fmt(lo)}" if lower else ""
    high_words = f"{_BOUND_WORDS[upper]} {_fmt(hi)}" if upper else ""
    failed: Callable[[Any], bool]
    if lower and upper:
        assert lo is not None and hi is not None  # both bounds are set: getattr read them
        exclusive = hi < lo  # e.g. gt: 10, lt: 5 means "outside [5, 10]"
        rule_id = f"{kind}.{lower}_{upper}" + ("_exclusive" if exclusive else "")
        description = f"must be {low_words}{' or ' if exclusive else ' and '}{high_words}"
        if exclusive:
            failed = lambda v: below(v) and above(v)  # noqa: E731
        else:
            failed = lambda v: below(v) or above(v)  # noqa: E731
    elif lower:
        rule_id, description, failed = f"{kind}.{lower}", f"must be {low_words}", below
    else:
        rule_id, description, failed = f"{kind}.{upper}", f"must be {high_words}", above
    if kind in ("float", "double"):
        bounded = failed
        failed = lambda v: math.isnan(v) or bounded(v)  # noqa: E731 - NaN is never in range
    return _test(rule_id, description, failed)


# ---------------------------------------------------------------------------------------------
# RE2 patterns with `re`

_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")
_SAFE_ESCAPES = frozenset("dDwWtnrfvA")  # same meaning in RE2 and in `re` with re.ASCII
_RE2_SPACE = r"\t\n\f\r "  # RE2's \s; `re`'s also has \v


def _compile_re2(pattern: str) -> re.Pattern[str]:
    """Compiles an RE2 pattern (as protovalidate's `matches` uses it) for `re.search`.

    Translates `$` (RE2: end of text; `re`: also before a final newline) and `\\s`, `\\z`; raises
    _Unsupported for syntax the two engines may read differently, so that type falls back.
    """
    out: list[str] = []
    i, in_class = 0, False
    after_repeat = 0  # 1 after a quantifier, 2 after a lazy `?` (both engines allow `a*?`)
    while i < len(pattern):
        c, token, repeat = pattern[i], pattern[i], False
        if c == "\\":
            escaped = pattern[i + 1 : i + 2]
            if escaped == "z" and not in_class:
                token = r"\Z"
            elif escaped == "s":
                token = _RE2_SPACE if in_class else f"[{_RE2_SPACE}]"
            elif escaped in _SAFE_ESCAPES or (
                escaped and escaped.isascii() and not escaped.isalnum()
            ):
                token = c + escaped
            else:
                raise _Unsupported(f"regex escape \\{escaped} in {pattern!r}")
            i += 1
        elif in_class:
            if c == "[":  # POSIX classes and nested sets differ
                raise _Unsupported(f"regex {pattern!r}")
            in_class = c != "]"
        elif c == "[":
            in_class = True
            start = i + 1 + (pattern[i + 1 : i + 2] == "^")
            if pattern[start : start + 1] == "]":
                raise _Unsupported(f"regex {pattern!r}")
        elif c == "$":
            token = r"\Z"
        elif c == "(" and pattern[i + 1 : i + 2] == "?" and pattern[i + 2 : i + 3] != ":":
            raise _Unsupported(f"regex group flags in {pattern!r}")
        elif c in "*+?":
            repeat = True
        elif c == "{":
            # `re` reads `{,n}` as a repeat, RE2 as text; RE2 caps counts at 1000.
            match = _REPEAT.match(pattern, i)
            if match is None or max(int(n) for n in match.groups("0") if n) > 1000:
                raise _Unsupported(f"regex {pattern!r}")
            token, repeat = match.group(), True
            i = match.end() - 1
        if repeat:
            if after_repeat == 1 and c == "?":
                after_repeat = 2
            elif after_repeat:
                raise _Unsupported(f"regex {pattern!r}")  # possessive in `re`, an error in RE2
            else:
                after_repeat = 1
        else:
            after_repeat = 0
        out.append(token)
        i += 1
    try:
        return re.compile("".join(out), re.ASCII)
    except re.error as e:
        raise _Unsupported(f"regex {pattern!r}: {e}") from e
