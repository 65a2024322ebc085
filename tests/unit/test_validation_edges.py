"""Corners of the fast validator that neither our protos nor test_validation.py's Rules reach:
every scalar kind, message oneof rules that are not required or list repeated and presence
fields or name an explicitly ignored member, repeated messages whose items are ignored, and
invalid oneof rules (left to protovalidate). Each is cross-checked against protovalidate."""

from __future__ import annotations

import protovalidate
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import Message

from streamify.core import validation
from streamify.core.validation import validate
from tests.unit.test_validation import RandomMessages, reference

pytestmark = pytest.mark.unit

EDGES_PROTO = r"""
name: "streamify_validationtest/edges.proto"
package: "streamify.validationedges"
dependency: "buf/validate/validate.proto"
syntax: "proto3"
enum_type {
  name: "Color"
  value { name: "COLOR_UNSPECIFIED" number: 0 }
  value { name: "COLOR_RED" number: 1 }
}
message_type {
  name: "Leaf"
  field { name: "label" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { string { min_len: 2 } } } }
}
message_type {
  name: "Kinds"
  field { name: "f32" number: 1 type: TYPE_FIXED32 label: LABEL_OPTIONAL options { [buf.validate.field] { fixed32 { gt: 2 } } } }
  field { name: "f64" number: 2 type: TYPE_FIXED64 label: LABEL_OPTIONAL options { [buf.validate.field] { fixed64 { lt: 9 } } } }
  field { name: "sf32" number: 3 type: TYPE_SFIXED32 label: LABEL_OPTIONAL options { [buf.validate.field] { sfixed32 { gte: -1 } } } }
  field { name: "sf64" number: 4 type: TYPE_SFIXED64 label: LABEL_OPTIONAL options { [buf.validate.field] { sfixed64 { lte: 3 } } } }
  field { name: "si32" number: 5 type: TYPE_SINT32 label: LABEL_OPTIONAL options { [buf.validate.field] { sint32 { const: 4 } } } }
  field { name: "si64" number: 6 type: TYPE_SINT64 label: LABEL_OPTIONAL options { [buf.validate.field] { sint64 { not_in: 0 not_in: 5 } } } }
  field { name: "i32" number: 7 type: TYPE_INT32 label: LABEL_OPTIONAL options { [buf.validate.field] { int32 { in: 1 in: 3 } } } }
  field { name: "i64" number: 8 type: TYPE_INT64 label: LABEL_OPTIONAL options { [buf.validate.field] { int64 { gt: 0 lt: 10 } } } }
  field { name: "u32" number: 9 type: TYPE_UINT32 label: LABEL_OPTIONAL options { [buf.validate.field] { uint32 { lte: 7 } } } }
  field { name: "u64" number: 10 type: TYPE_UINT64 label: LABEL_OPTIONAL options { [buf.validate.field] { uint64 { gte: 2 } } } }
  field { name: "fl" number: 11 type: TYPE_FLOAT label: LABEL_OPTIONAL options { [buf.validate.field] { float { lt: 1 } } } }
  field { name: "db" number: 12 type: TYPE_DOUBLE label: LABEL_OPTIONAL options { [buf.validate.field] { double { gt: -1 } } } }
  field { name: "bl" number: 13 type: TYPE_BOOL label: LABEL_OPTIONAL options { [buf.validate.field] { bool { const: false } } } }
  field { name: "st" number: 14 type: TYPE_STRING label: LABEL_OPTIONAL options { [buf.validate.field] { string { max_len: 2 strict: true } } } }
  field { name: "req" number: 15 type: TYPE_INT32 label: LABEL_OPTIONAL options { [buf.validate.field] { required: true } } }
  field { name: "xs" number: 16 type: TYPE_INT32 label: LABEL_REPEATED
          options { [buf.validate.field] { repeated { items { ignore: IGNORE_IF_ZERO_VALUE } } } } }
  field { name: "ys" number: 17 type: TYPE_INT32 label: LABEL_REPEATED
          options { [buf.validate.field] { repeated { items { ignore: IGNORE_ALWAYS int32 { gt: 5 } } } } } }
  field { name: "dupes" number: 18 type: TYPE_STRING label: LABEL_REPEATED
          options { [buf.validate.field] { repeated { unique: false max_items: 4 } } } }
  field { name: "keyed" number: 19 type: TYPE_MESSAGE label: LABEL_REPEATED type_name: ".streamify.validationedges.Kinds.KeyedEntry"
          options { [buf.validate.field] { map { min_pairs: 1 keys { string { min_len: 2 } } } } } }
  field { name: "valued" number: 20 type: TYPE_MESSAGE label: LABEL_REPEATED type_name: ".streamify.validationedges.Kinds.ValuedEntry"
          options { [buf.validate.field] { map { values { ignore: IGNORE_IF_ZERO_VALUE int32 { gt: 5 } } } } } }
  field { name: "fl_in" number: 21 type: TYPE_FLOAT label: LABEL_OPTIONAL options { [buf.validate.field] { float { in: 1 in: 2.5 } } } }
  field { name: "db_const" number: 22 type: TYPE_DOUBLE label: LABEL_OPTIONAL options { [buf.validate.field] { double { const: 2.5 } } } }
  field { name: "i32_empty" number: 23 type: TYPE_INT32 label: LABEL_OPTIONAL options { [buf.validate.field] { int32 { gt: 5 lt: 5 } } } }
  field { name: "i64_point" number: 24 type: TYPE_INT64 label: LABEL_OPTIONAL options { [buf.validate.field] { int64 { gte: 3 lte: 3 } } } }
  field { name: "shades" number: 25 type: TYPE_ENUM label: LABEL_REPEATED type_name: ".streamify.validationedges.Color"
          options { [buf.validate.field] { repeated { items { enum { in: 1 } } } } } }
  nested_type {
    name: "KeyedEntry"
    field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
    field { name: "value" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL }
    options { map_entry: true }
  }
  nested_type {
    name: "ValuedEntry"
    field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
    field { name: "value" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL }
    options { map_entry: true }
  }
}
message_type {
  name: "AllInOne"
  field { name: "a" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
  field { name: "b" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL options { [buf.validate.field] { string { min_len: 2 } } } }
  options { [buf.validate.message] { oneof { fields: "a" fields: "b" required: true } } }
}
message_type {
  name: "EnumItems"
  field { name: "colors" number: 1 type: TYPE_ENUM label: LABEL_REPEATED type_name: ".streamify.validationedges.Color"
          options { [buf.validate.field] { repeated { items { enum { defined_only: true } } } } } }
}
message_type {
  name: "Oneofs"
  field { name: "tags" number: 1 type: TYPE_STRING label: LABEL_REPEATED
          options { [buf.validate.field] { repeated { max_items: 2 } } } }
  field { name: "maybe" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL proto3_optional: true oneof_index: 0
          options { [buf.validate.field] { string { min_len: 2 } } } }
  field { name: "count" number: 3 type: TYPE_INT32 label: LABEL_OPTIONAL
          options { [buf.validate.field] { int32 { gt: 1 } } } }
  field { name: "strict" number: 4 type: TYPE_STRING label: LABEL_OPTIONAL
          options { [buf.validate.field] { ignore: IGNORE_UNSPECIFIED string { min_len: 2 } } } }
  field { name: "other" number: 5 type: TYPE_INT32 label: LABEL_OPTIONAL }
  field { name: "leaves" number: 6 type: TYPE_MESSAGE label: LABEL_REPEATED type_name: ".streamify.validationedges.Leaf"
          options { [buf.validate.field] { repeated { max_items: 3 items { ignore: IGNORE_ALWAYS } } } } }
  oneof_decl { name: "_maybe" }
  options { [buf.validate.message] {
    oneof { fields: "tags" fields: "maybe" fields: "count" }
    oneof { fields: "strict" fields: "other" }
  } }
}
message_type {
  name: "Duplicate"
  field { name: "a" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
  field { name: "b" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL }
  options { [buf.validate.message] { oneof { fields: "a" fields: "a" fields: "b" } } }
}
message_type {
  name: "Unknown"
  field { name: "a" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
  options { [buf.validate.message] { oneof { fields: "a" fields: "zz" } } }
}
message_type {
  name: "Empty"
  field { name: "a" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
  options { [buf.validate.message] { oneof { required: true } } }
}
"""


def edge(name: str) -> type[Message]:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName("streamify_validationtest/edges.proto")
    except KeyError:
        pool.Add(text_format.Parse(EDGES_PROTO, descriptor_pb2.FileDescriptorProto()))
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"streamify.validationedges.{name}")
    )


@pytest.mark.parametrize("name", ["Kinds", "Oneofs", "Leaf", "AllInOne"])
def test_every_scalar_kind_and_message_oneof_takes_the_fast_path_and_agrees(name):
    message_type = edge(name)
    randoms = RandomMessages(seed=7)
    invalid = 0
    for _ in range(300):
        message = randoms.message(message_type)
        fast, slow = validate(message), reference(message)
        assert sorted(fast, key=repr) == sorted(slow, key=repr), message
        invalid += bool(slow)
    assert invalid > 0
    assert not validation._PLANS[message_type.DESCRIPTOR.full_name].fallback


def test_a_message_oneof_that_is_not_required_accepts_none_set_and_counts_lists_and_presence():
    Oneofs = edge("Oneofs")
    assert validate(Oneofs(strict="ab")) == reference(Oneofs(strict="ab")) == []
    both = Oneofs(tags=["x"], maybe="ok", strict="ab")
    assert (
        [v.rule_id for v in validate(both)]
        == [v.rule_id for v in reference(both)]
        == ["message.oneof"]
    )
    empty = Oneofs(tags=[], maybe="", strict="ab")  # an empty list is unset, an optional "" is set
    assert sorted(validate(empty), key=repr) == sorted(reference(empty), key=repr)
    assert "message.oneof" not in {v.rule_id for v in validate(empty)}
    assert validate(Oneofs(tags=["x"], strict="ab")) == []


def test_an_explicit_ignore_on_a_oneof_member_is_kept():
    Oneofs = edge("Oneofs")
    # `strict` says IGNORE_UNSPECIFIED: its empty value is checked, although a oneof member
    message = Oneofs(other=1)
    assert validate(message) == reference(message) != []


def test_items_ignored_always_are_not_validated():
    Oneofs, Leaf = edge("Oneofs"), edge("Leaf")
    message = Oneofs(strict="ab", leaves=[Leaf(label="x")])  # "x" breaks Leaf's own min_len
    assert validate(message) == reference(message) == []


@pytest.mark.parametrize("name", ["Duplicate", "Unknown", "Empty"])
def test_an_invalid_oneof_rule_is_left_to_protovalidate(name):
    message = edge(name)()
    with pytest.raises(protovalidate.CompilationError):
        protovalidate.Validator().collect_violations(message)
    with pytest.raises(protovalidate.CompilationError):
        validate(message)
    assert validation._PLANS[message.DESCRIPTOR.full_name].fallback


def test_defined_only_on_enum_items_is_left_to_protovalidate():
    # protovalidate-python does not check it on items; the fast path must not either
    EnumItems = edge("EnumItems")
    message = EnumItems(colors=[1, 7])
    assert validate(message) == reference(message)
    assert validation._PLANS[EnumItems.DESCRIPTOR.full_name].fallback


@pytest.mark.parametrize(("pattern", "text", "found"), [
    ("[a$]", "$", True),  # `$` in a class is a dollar, not the end of the text
    ("[a$]", "", False),
    ("a{1000}", "a" * 1000, True),  # RE2's largest repeat count
])  # fmt: skip
def test_re2_patterns_translate_for_re(pattern, text, found):
    assert bool(validation._compile_re2(pattern).search(text)) == found


@pytest.mark.parametrize("pattern", ["[^]a]", "\\€", "a{2}+"])
def test_patterns_re2_rejects_or_reads_otherwise_are_left_to_protovalidate(pattern):
    with pytest.raises(validation._Unsupported):
        validation._compile_re2(pattern)
