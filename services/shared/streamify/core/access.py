"""Which RPCs each identity may call, checked by the server interceptor before any handler runs.

Users may call the public API (the handlers then check ownership), never the internal methods.
Each service identity may call exactly what its code calls, so a stolen service token (or key)
opens only those methods. `operator` may call everything. The method paths come from the
generated descriptors, so a renamed RPC fails at import, not silently.
"""

from __future__ import annotations

from google.protobuf.descriptor import FileDescriptor

from streamify.core import errors
from streamify.core.auth import Principal
from streamify.core.errors import ApiError
from streamify.core.token_keys import OPERATOR
from streamify.v1 import metadata_service_pb2, worker_service_pb2

__all__ = ["INTERNAL_METHODS", "OPERATOR", "SERVICE_METHODS", "check", "method_path"]


def method_path(file: FileDescriptor, service: str, method: str) -> str:
    """`/package.Service/Method` of a method in a generated file's descriptor (KeyError if the
    method does not exist)."""
    descriptor = file.services_by_name[service].methods_by_name[method]
    return f"/{descriptor.containing_service.full_name}/{descriptor.name}"


def _metadata(method: str) -> str:
    return method_path(metadata_service_pb2.DESCRIPTOR, "MetadataService", method)


CREATE_VIDEO = _metadata("CreateVideo")
GET_VIDEO = _metadata("GetVideo")
UPDATE_VIDEO_STATUS = _metadata("UpdateVideoStatus")
LIST_VIDEO_EVENTS = _metadata("ListVideoEvents")
WORKER_CONNECT = method_path(worker_service_pb2.DESCRIPTOR, "TranscodeWorkerService", "Connect")

# Methods only services call: a user token is refused there whatever the handler would say.
INTERNAL_METHODS = frozenset({UPDATE_VIDEO_STATUS, LIST_VIDEO_EVENTS, WORKER_CONNECT})

SERVICE_METHODS: dict[str, frozenset[str]] = {
    "upload": frozenset({CREATE_VIDEO, UPDATE_VIDEO_STATUS, LIST_VIDEO_EVENTS}),
    "transcode": frozenset({GET_VIDEO, UPDATE_VIDEO_STATUS, LIST_VIDEO_EVENTS}),
    "gateway": frozenset({GET_VIDEO, LIST_VIDEO_EVENTS}),
    "worker": frozenset({WORKER_CONNECT}),
}


def check(principal: Principal, path: str) -> None:
    """Returns if `principal` may call `path`; PERMISSION_DENIED (METHOD_NOT_ALLOWED) if not."""
    if not principal.is_service:
        if path in INTERNAL_METHODS:
            raise _denied(f"{path} is internal to Streamify: user tokens cannot call it")
        return
    if principal.subject == OPERATOR:
        return
    allowed = SERVICE_METHODS.get(principal.subject, frozenset())
    if path not in allowed:
        listed = ", ".join(sorted(allowed)) or "nothing"
        raise _denied(
            f"the {principal.subject!r} service identity may not call {path} "
            f"(it may call: {listed})"
        )


def _denied(message: str) -> ApiError:
    return errors.permission_denied(message, reason="METHOD_NOT_ALLOWED")
