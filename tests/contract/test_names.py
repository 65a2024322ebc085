"""The protos' name patterns are the code's: a name that passes request validation parses."""

from __future__ import annotations

from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor

from streamify.core import names
from streamify.v1 import metadata_service_pb2, transcode_service_pb2, upload_service_pb2

COLLECTIONS = [names.VIDEOS, names.UPLOADS, names.TRANSCODE_JOBS, names.USERS]
KNOWN = {c.pattern for c in COLLECTIONS}
# an optional owner filter: empty, or a user's name
KNOWN.add(rf"^({names.USERS.plural}/{names.SUBJECT})?$")
NOT_NAMES = {"content_type"}  # `video/mp4` has a slash but names no resource


def _name_patterns() -> dict[str, str]:
    found: dict[str, str] = {}

    def visit(desc: Descriptor) -> None:
        for field in desc.fields:
            options = field.GetOptions()
            if options.HasExtension(validate_pb2.field):
                pattern = options.Extensions[validate_pb2.field].string.pattern
                if "/" in pattern and field.name not in NOT_NAMES:
                    found[field.full_name] = pattern
        for nested in desc.nested_types:
            visit(nested)

    for module in (metadata_service_pb2, upload_service_pb2, transcode_service_pb2):
        for desc in module.DESCRIPTOR.message_types_by_name.values():
            visit(desc)
    return found


def test_every_name_pattern_in_the_protos_is_one_the_code_parses():
    patterns = _name_patterns()
    assert len(patterns) >= 10, patterns  # the name fields of every service
    foreign = {field: p for field, p in patterns.items() if p not in KNOWN}
    assert not foreign, f"patterns not defined in streamify.core.names: {foreign}"
