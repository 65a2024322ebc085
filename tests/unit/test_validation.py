"""The fast request validator: typical requests, and a cross-check against protovalidate itself."""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterator
from types import ModuleType

import protovalidate
import pytest
import re2
from buf.validate import validate_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from streamify.core import validation
from streamify.core.validation import FieldViolation, validate
from streamify.v1 import (
    metadata_service_pb2,
    transcode_service_pb2,
    upload_service_pb2,
    video_pb2,
    worker_service_pb2,
)

pytestmark = pytest.mark.unit

V1_MODULES: list[ModuleType] = [
    metadata_service_pb2,
    transcode_service_pb2,
    upload_service_pb2,
    video_pb2,
    worker_service_pb2,
]


def ids(violations: list[FieldViolation]) -> set[tuple[str, str]]:
    return {(v.field, v.rule_id) for v in violations}


# --- typical requests -----------------------------------------------------------------------


def test_get_video_accepts_a_resource_name():
    assert validate(metadata_service_pb2.GetVideoRequest(name="videos/abc-1")) == []


@pytest.mark.parametrize(
    "name", ["", "abc", "videos/", "videos/Abc", "videos/-a", "videos/abc\n", "x/videos/abc"]
)
def test_get_video_rejects_a_bad_name(name):
    [violation] = validate(metadata_service_pb2.GetVideoRequest(name=name))
    assert (violation.field, violation.rule_id) == ("name", "string.pattern")
    assert (
        violation.description == "does not match regex pattern `^videos/[a-z0-9][a-z0-9-]{0,62}$`"
    )
    assert str(violation).startswith("name: does not match")


def test_create_video_accepts_a_titled_video():
    request = metadata_service_pb2.CreateVideoRequest(
        video=video_pb2.Video(title="Holiday"), owner="users/bob"
    )
    assert validate(request) == []


def test_create_video_requires_the_video():
    violations = validate(metadata_service_pb2.CreateVideoRequest())
    assert ("video", "required") in ids(violations)
    assert any(v.description == "value is required" for v in violations)


def test_create_video_rejects_a_too_long_title():
    request = metadata_service_pb2.CreateVideoRequest(video=video_pb2.Video(title="é" * 201))
    assert ids(validate(request)) == {("video.title", "string.max_len")}
    # characters, not bytes
    assert (
        validate(metadata_service_pb2.CreateVideoRequest(video=video_pb2.Video(title="é" * 200)))
        == []
    )


def test_list_videos_bounds_the_page_size():
    assert validate(metadata_service_pb2.ListVideosRequest(page_size=100)) == []
    [violation] = validate(metadata_service_pb2.ListVideosRequest(page_size=101))
    assert (violation.field, violation.rule_id) == ("page_size", "int32.gte_lte")
    assert (
        violation.description == "must be greater than or equal to 0 and less than or equal to 100"
    )


def test_enum_values_must_be_defined():
    violations = validate(metadata_service_pb2.ListVideosRequest(status=42))
    assert ids(violations) == {("status", "enum.defined_only")}
    assert violations[0].description == "value must be one of the defined enum values"


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([1, 2, 3], set()),
        ([], {("part_numbers", "repeated.min_items")}),
        ([4, 5, 4], {("part_numbers", "repeated.unique")}),
        (
            [1, 0, 10001],
            {("part_numbers[1]", "int32.gte_lte"), ("part_numbers[2]", "int32.gte_lte")},
        ),
        (list(range(1, 102)), {("part_numbers", "repeated.max_items")}),
    ],
)
def test_sign_parts_checks_the_part_numbers(parts, expected):
    assert (
        ids(validate(upload_service_pb2.SignPartsRequest(name="uploads/u1", part_numbers=parts)))
        == expected
    )


def test_create_upload_sha256_is_optional_but_checked_when_given():
    request = upload_service_pb2.CreateUploadRequest(
        file_name="a.mp4", size_bytes=1, content_type="video/mp4"
    )
    assert validate(request) == []
    request.sha256 = "A" * 64
    assert ids(validate(request)) == {("sha256", "string.pattern")}
    request.sha256 = "0a" * 32
    assert validate(request) == []


def test_types_without_cel_take_the_fast_path():
    for message_type in (
        metadata_service_pb2.GetVideoRequest,
        metadata_service_pb2.ListVideosRequest,
        upload_service_pb2.SignPartsRequest,
        upload_service_pb2.CreateUploadRequest,
        upload_service_pb2.CompleteUploadRequest,
        metadata_service_pb2.CreateVideoRequest,
        metadata_service_pb2.UpdateVideoStatusRequest,
    ):
        validate(message_type())
        assert not validation._PLANS[message_type.DESCRIPTOR.full_name].fallback


def test_complete_upload_allows_at_most_10000_parts():
    parts = [
        upload_service_pb2.CompletedPart(part_number=n % 10000 + 1, etag="e") for n in range(10001)
    ]
    parts[7].etag = ""
    request = upload_service_pb2.CompleteUploadRequest(name="uploads/u1", parts=parts)
    assert ids(validate(request)) == {
        ("parts", "repeated.max_items"),
        ("parts[7].etag", "string.min_len"),
    }


@pytest.mark.parametrize(
    "pattern",
    [
        r"^a(?i)b$",
        r"[[:alpha:]]",
        r"\p{L}",
        r"a{,3}",
        r"a*+",
        r"\bx",
        r"(a)\1",
        r"\Z",
        "a{1001}",
        "(?P<n>a)",
        "[]a]",
    ],
)
def test_regexes_re_might_read_differently_from_re2_are_left_to_protovalidate(pattern):
    with pytest.raises(validation._Unsupported):
        validation._compile_re2(pattern)


def test_regexes_follow_re2():
    assert validation._compile_re2(r"^\d+\s?x$").search("12\tx")
    assert not validation._compile_re2(r"^\d+$").search("12\n")  # `re`'s $ would match before \n
    assert not validation._compile_re2(r"^\d+$").search("١٢")  # RE2's \d is ASCII
    assert not validation._compile_re2(r"^\s$").search("\v")
    assert validation._compile_re2(r"^(?:ab)+?c{1,2}\z").search("ababcc")


# --- rules our protos do not use yet, in a test-only proto --------------------------------

RULES_PROTO = r"""
name: "streamify_validationtest/rules.proto"
package: "streamify.validationtest"
dependency: "buf/validate/validate.proto"
syntax: "proto3"
enum_type {
  name: "Color"
  value { name: "COLOR_UNSPECIFIED" number: 0 }
  value { name: "COLOR_RED" number: 1 }
  value { name: "COLOR_BLUE" number: 2 }
}
message_type {
  name: "Leaf"
  field { name: "label" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { string { min_len: 1 max_len: 3 } } } }
}
message_type {
  name: "CelLeaf"
  field { name: "n" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL
          options { [buf.validate.field] { cel { id: "n_even" message: "must be even" expression: "this % 2 == 0" } } } }
}
message_type {
  name: "Node"
  field { name: "id" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { string { min_len: 1 } } } }
  field { name: "child" number: 2 type: TYPE_MESSAGE label: LABEL_OPTIONAL type_name: ".streamify.validationtest.Node" }
}
message_type {
  name: "Rules"
  field { name: "s_const" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { string { const: "abc" } } } }
  field { name: "s_len" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { string { len: 3 } } } }
  field { name: "s_bytes" number: 3 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { string { min_bytes: 2 max_bytes: 4 len_bytes: 3 } } } }
  field { name: "s_affix" number: 4 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { string { prefix: "ab" suffix: "yz" contains: "k" not_contains: "q" } } } }
  field { name: "s_in" number: 5 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { string { in: "a" in: "bb" } } } }
  field { name: "s_not_in" number: 6 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { string { not_in: "x" not_in: "" } } } }
  field { name: "s_pattern" number: 7 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { string { pattern: "^\\d+\\s?[a-z]*\\z" } } } }
  field { name: "s_required" number: 8 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { required: true string { max_len: 2 } } } }
  field { name: "s_optional" number: 9 type: TYPE_STRING label: LABEL_OPTIONAL proto3_optional: true oneof_index: 1
          options { [buf.validate.field] { string { min_len: 2 } } } }
  field { name: "i32_const" number: 10 type: TYPE_INT32 label: LABEL_OPTIONAL
          options { [buf.validate.field] { int32 { const: 7 } } } }
  field { name: "i64_outside" number: 11 type: TYPE_INT64 label: LABEL_OPTIONAL
          options { [buf.validate.field] { int64 { gt: 10 lt: 5 } } } }
  field { name: "u32_range" number: 12 type: TYPE_UINT32 label: LABEL_OPTIONAL
          options { [buf.validate.field] { uint32 { gt: 1 lte: 9 } } } }
  field { name: "u64_lt" number: 13 type: TYPE_UINT64 label: LABEL_OPTIONAL
          options { [buf.validate.field] { uint64 { lt: 100 } } } }
  field { name: "si32_in" number: 14 type: TYPE_SINT32 label: LABEL_OPTIONAL
          options { [buf.validate.field] { sint32 { in: -1 in: 2 } } } }
  field { name: "sf64_not_in" number: 15 type: TYPE_SFIXED64 label: LABEL_OPTIONAL
          options { [buf.validate.field] { sfixed64 { not_in: 0 not_in: 3 } } } }
  field { name: "f32_gt" number: 16 type: TYPE_FLOAT label: LABEL_OPTIONAL
          options { [buf.validate.field] { float { gt: 0 } } } }
  field { name: "d_range" number: 17 type: TYPE_DOUBLE label: LABEL_OPTIONAL
          options { [buf.validate.field] { double { gte: 0.5 lt: 1.5 } } } }
  field { name: "d_finite" number: 18 type: TYPE_DOUBLE label: LABEL_OPTIONAL
          options { [buf.validate.field] { double { finite: true lte: 1e300 } } } }
  field { name: "e_in" number: 19 type: TYPE_ENUM label: LABEL_OPTIONAL type_name: ".streamify.validationtest.Color"
          options { [buf.validate.field] { enum { in: 1 in: 2 } } } }
  field { name: "e_not_in" number: 20 type: TYPE_ENUM label: LABEL_OPTIONAL type_name: ".streamify.validationtest.Color"
          options { [buf.validate.field] { enum { defined_only: true not_in: 2 } } } }
  field { name: "e_const" number: 21 type: TYPE_ENUM label: LABEL_OPTIONAL type_name: ".streamify.validationtest.Color"
          options { [buf.validate.field] { enum { const: 1 } } } }
  field { name: "b_const" number: 22 type: TYPE_BOOL label: LABEL_OPTIONAL
          options { [buf.validate.field] { bool { const: true } } } }
  field { name: "tags" number: 23 type: TYPE_STRING label: LABEL_REPEATED
          options { [buf.validate.field] { repeated { min_items: 1 max_items: 3 unique: true
                                                      items { string { pattern: "^[a-z]+$" max_len: 4 } } } } } }
  field { name: "nums" number: 24 type: TYPE_INT64 label: LABEL_REPEATED
          options { [buf.validate.field] { repeated { items { ignore: IGNORE_IF_ZERO_VALUE int64 { gt: 5 } } } } } }
  field { name: "labels" number: 25 type: TYPE_MESSAGE label: LABEL_REPEATED type_name: ".streamify.validationtest.Rules.LabelsEntry"
          options { [buf.validate.field] { map { max_pairs: 2 keys { string { min_len: 1 max_len: 3 } }
                                                 values { int32 { gte: 0 } } } } } }
  field { name: "leaves" number: 26 type: TYPE_MESSAGE label: LABEL_REPEATED type_name: ".streamify.validationtest.Leaf"
          options { [buf.validate.field] { repeated { max_items: 2 } } } }
  field { name: "leaf_map" number: 27 type: TYPE_MESSAGE label: LABEL_REPEATED type_name: ".streamify.validationtest.Rules.LeafMapEntry" }
  field { name: "leaf" number: 28 type: TYPE_MESSAGE label: LABEL_OPTIONAL type_name: ".streamify.validationtest.Leaf"
          options { [buf.validate.field] { required: true } } }
  field { name: "cel_leaf" number: 29 type: TYPE_MESSAGE label: LABEL_OPTIONAL type_name: ".streamify.validationtest.CelLeaf" }
  field { name: "ignored" number: 30 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { ignore: IGNORE_ALWAYS string { min_len: 5 } } } }
  field { name: "ignored_leaf" number: 31 type: TYPE_MESSAGE label: LABEL_OPTIONAL type_name: ".streamify.validationtest.Leaf"
          options { [buf.validate.field] { ignore: IGNORE_ALWAYS } } }
  field { name: "zero_ignored" number: 32 type: TYPE_INT32 label: LABEL_OPTIONAL
          options { [buf.validate.field] { ignore: IGNORE_IF_ZERO_VALUE int32 { gt: 3 } } } }
  field { name: "c_a" number: 33 type: TYPE_STRING label: LABEL_OPTIONAL oneof_index: 0
          options { [buf.validate.field] { string { min_len: 2 } } } }
  field { name: "c_b" number: 34 type: TYPE_INT32 label: LABEL_OPTIONAL oneof_index: 0 }
  field { name: "m_x" number: 35 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { string { min_len: 2 } } } }
  field { name: "m_y" number: 36 type: TYPE_INT32 label: LABEL_OPTIONAL }
  field { name: "node" number: 37 type: TYPE_MESSAGE label: LABEL_OPTIONAL type_name: ".streamify.validationtest.Node" }
  field { name: "u64_example" number: 38 type: TYPE_UINT64 label: LABEL_OPTIONAL
          options { [buf.validate.field] { uint64 { example: 5 gte: 3 } } } }
  nested_type {
    name: "LabelsEntry"
    field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
    field { name: "value" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL }
    options { map_entry: true }
  }
  nested_type {
    name: "LeafMapEntry"
    field { name: "key" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
    field { name: "value" number: 2 type: TYPE_MESSAGE label: LABEL_OPTIONAL type_name: ".streamify.validationtest.Leaf" }
    options { map_entry: true }
  }
  oneof_decl { name: "choice" options { [buf.validate.oneof] { required: true } } }
  oneof_decl { name: "_s_optional" }
  options { [buf.validate.message] { oneof { fields: "m_x" fields: "m_y" required: true } } }
}
"""


def _rules_proto() -> descriptor_pb2.FileDescriptorProto:
    return text_format.Parse(RULES_PROTO, descriptor_pb2.FileDescriptorProto())


def _test_message(name: str) -> type[Message]:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName("streamify_validationtest/rules.proto")
    except KeyError:
        pool.Add(_rules_proto())
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"streamify.validationtest.{name}")
    )


def test_test_only_rules_take_the_fast_path_and_nested_cel_is_delegated():
    Rules, CelLeaf, Leaf = _test_message("Rules"), _test_message("CelLeaf"), _test_message("Leaf")
    message = Rules(
        s_required="ok",
        leaf=Leaf(label="x"),
        c_b=1,
        m_y=1,
        tags=["a"],
        cel_leaf=CelLeaf(n=3),
        s_const="abc",
        s_len="abc",
        s_bytes="abc",
        s_affix="abkyz",
        s_in="a",
        s_not_in="y",
        s_pattern="1",
        i32_const=7,
        i64_outside=11,
        u32_range=2,
        si32_in=2,
        sf64_not_in=1,
        f32_gt=1,
        d_range=1,
        e_in=1,
        e_const=1,
        b_const=True,
        u64_example=3,
    )
    assert validate(message) == [FieldViolation("cel_leaf.n", "must be even", "n_even")]
    assert not validation._PLANS["streamify.validationtest.Rules"].fallback
    assert validation._PLANS["streamify.validationtest.CelLeaf"].fallback


# --- cross-check against protovalidate ------------------------------------------------------

_reference = protovalidate.Validator()


def reference(message: Message) -> list[FieldViolation]:
    return [
        FieldViolation(
            validation.field_path_string(v.proto.field), v.proto.message, v.proto.rule_id
        )
        for v in _reference.collect_violations(message)
    ]


_WORDS = [
    "",
    "a",
    "ab",
    "abc",
    "abcd",
    "bb",
    "x",
    "y",
    "1",
    "12 ab",
    "12\tab",
    "١٢",
    "é",
    "éé",
    "abkyz",
    "abqkyz",
    "videos/abc",
    "videos/a-1",
    "videos/",
    "videos/Abc",
    "videos/-a",
    "users/bob.x",
    "users/",
    "users/b_",
    "uploads/u1",
    "uploads/U1",
    "transcodeJobs/j-1",
    "video/mp4",
    "video/x-matroska",
    "audio/mp3",
    "0" * 64,
    "f" * 63,
    "A" * 64,
    "0a" * 32,
]
_LETTERS = "ab0-_./ Zé\n"
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _rule_numbers(rules: Message) -> Iterator[float]:
    """Every number in a field's rules: boundaries worth hitting (and +-1)."""
    for fd, value in rules.ListFields():
        values = value if fd.is_repeated else [value]
        for v in values:
            if isinstance(v, Message):
                yield from _rule_numbers(v)
            elif isinstance(v, int | float) and not isinstance(v, bool):
                yield v


class RandomMessages:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def message(self, message_type: type[Message], depth: int = 0) -> Message:
        message = message_type()
        for field in message.DESCRIPTOR.fields:
            if self.rng.random() < 0.3:
                continue
            rules = field.GetOptions().Extensions[validate_pb2.field]
            bounds = [n + d for n in _rule_numbers(rules) for d in (-1, 0, 1)]
            target = getattr(message, field.name)
            entry = field.message_type
            if entry is not None and entry.GetOptions().map_entry:
                key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
                for _ in range(self.rng.choice([0, 1, 2, 3])):
                    key = self.scalar(key_field, bounds)
                    if value_field.message_type is not None:
                        if depth < 3:
                            target[key].CopyFrom(self.sub_message(value_field.message_type, depth))
                    else:
                        target[key] = self.scalar(value_field, bounds)
            elif field.is_repeated:
                size = self.rng.choice([0, 1, 1, 2, 3, 5])
                if field.message_type is None and self.rng.random() < 0.1:
                    size = self.rng.choice([int(n) for n in bounds if 0 <= n <= 200] or [size])
                pool = [self.item(field, bounds, depth) for _ in range(max(1, size // 2 + 1))]
                target.extend(self.rng.choice(pool) for _ in range(size))  # duplicates on purpose
            elif field.message_type is not None:
                if depth < 3:
                    target.CopyFrom(self.sub_message(field.message_type, depth))
            else:
                setattr(message, field.name, self.scalar(field, bounds))
        return message

    def sub_message(self, desc: Descriptor, depth: int) -> Message:
        message_type = message_factory.GetMessageClass(desc)
        if desc.full_name in ("google.protobuf.Duration", "google.protobuf.Timestamp"):
            # protovalidate's CEL conversion raises on out-of-range values: keep them in range
            return message_type(
                seconds=self.rng.randint(0, 10**9), nanos=self.rng.randint(0, 999_999_999)
            )
        return self.message(message_type, depth + 1)

    def item(self, field: FieldDescriptor, bounds: list[float], depth: int) -> object:
        if field.message_type is not None:
            return self.sub_message(field.message_type, depth)
        return self.scalar(field, bounds)

    def scalar(self, field: FieldDescriptor, bounds: list[float]) -> object:
        rng, kind = self.rng, field.type
        if kind == FieldDescriptor.TYPE_STRING:
            pattern = field.GetOptions().Extensions[validate_pb2.field].string.pattern
            matching = [w for w in _WORDS if re2.search(pattern, w)]  # the reference's regex engine
            roll = rng.random()
            if roll < 0.4 and matching:
                text = rng.choice(matching)
            elif roll < 0.6:
                text = rng.choice(_WORDS)
            elif roll < 0.75:
                text = "".join(rng.choice(_LETTERS) for _ in range(rng.randint(0, 8)))
            else:
                lengths = [0, 1, 64, 65] + [int(n) for n in bounds if 0 <= n <= 6000]
                text = rng.choice("aé") * rng.choice(lengths)
            return text + "\n" if rng.random() < 0.03 else text
        if kind == FieldDescriptor.TYPE_BOOL:
            return rng.random() < 0.5
        if kind == FieldDescriptor.TYPE_ENUM:
            numbers = list(field.enum_type.values_by_number)
            return rng.choice(numbers + numbers + [-1, max(numbers) + 1, 99])
        if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            return rng.choice(
                [0.0, -0.0, 0.5, 1.5, 1.4999, -1.0, math.nan, math.inf, -math.inf, *bounds]
            )
        if kind == FieldDescriptor.TYPE_BYTES:
            return rng.choice([b"", b"a", b"\x00\xff"])
        low, high = _INT_RANGES[kind]
        candidates = (
            [0, 1, -1, 2, 100, 101, low, high, rng.randint(low, high)] if rng.random() < 0.5 else []
        )
        return rng.choice([n for n in [*candidates, *map(int, bounds)] if low <= n <= high] or [0])


def _message_types() -> list[type[Message]]:
    types = [
        message_factory.GetMessageClass(desc)
        for module in V1_MODULES
        for desc in module.DESCRIPTOR.message_types_by_name.values()
    ]
    return types + [_test_message(name) for name in ("Rules", "Leaf", "CelLeaf", "Node")]


@pytest.mark.parametrize("message_type", _message_types(), ids=lambda t: t.DESCRIPTOR.full_name)
def test_agrees_with_protovalidate_on_random_messages(message_type):
    desc = message_type.DESCRIPTOR
    randoms = RandomMessages(seed=zlib.crc32(desc.full_name.encode()))
    count = 150 if desc.name == "Rules" else 250  # Rules has ~40 rules, slow in protovalidate
    invalid = 0
    for _ in range(count):
        message = randoms.message(message_type)
        fast, slow = validate(message), reference(message)
        assert sorted(fast, key=repr) == sorted(slow, key=repr), message
        invalid += bool(slow)
    if any(f.GetOptions().HasExtension(validate_pb2.field) for f in desc.fields):
        assert invalid > 0
        assert invalid < count or desc.name == "Rules"
