"""ApiError -> rich gRPC status (the tokens themselves: test_tokens.py)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import status_pb2

from streamify.core import errors
from streamify.core.errors import details_of, to_rpc_status

pytestmark = pytest.mark.unit


# --- errors -----------------------------------------------------------------------------------


class _FakeCall:
    """Stands in for a failed call on the client side: what details_of reads from it."""

    def __init__(self, status: grpc.Status) -> None:
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._status.code

    def details(self) -> str:
        return self._status.details

    def trailing_metadata(self):
        return self._status.trailing_metadata


def test_invalid_argument_carries_bad_request_and_error_info():
    err = errors.invalid_argument(
        [
            ("video.title", "must not be empty"),
            ("name", "must look like videos/x", "string.pattern"),
        ],
        reason="VALIDATION_FAILED",
    )
    status = to_rpc_status(err)
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "video.title: must not be empty" in status.details
    info, bad = details_of(_FakeCall(status))
    assert info.reason == "VALIDATION_FAILED" and info.domain == "streamify.dev"
    assert [(v.field, v.reason) for v in bad.field_violations] == [
        ("video.title", ""),
        ("name", "string.pattern"),
    ]
    rich = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    assert rich.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and rich.message == status.details


def test_constructors_have_readable_messages_and_reasons():
    nf = errors.not_found("videos/x")
    assert nf.code is grpc.StatusCode.NOT_FOUND and nf.message == "video 'videos/x' not found"
    info, bad = details_of(_FakeCall(to_rpc_status(nf)))
    assert info.metadata["resource_name"] == "videos/x" and bad is None
    assert errors.already_exists("videos/y").message == "video 'videos/y' already exists"
    fp = errors.failed_precondition(
        "not ready", "VIDEO_NOT_READY", metadata={"status": "UPLOADING"}
    )
    info, _ = details_of(_FakeCall(to_rpc_status(fp)))
    assert (info.reason, dict(info.metadata)) == ("VIDEO_NOT_READY", {"status": "UPLOADING"})
    assert errors.aborted("etag changed", "ETAG_MISMATCH").code is grpc.StatusCode.ABORTED
    assert errors.permission_denied().code is grpc.StatusCode.PERMISSION_DENIED
    assert errors.unauthenticated("no", "TOKEN_MISSING").reason == "TOKEN_MISSING"
    assert errors.resource_exhausted("slow down").code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert errors.unavailable("try later").code is grpc.StatusCode.UNAVAILABLE
    plain = errors.invalid_argument("page_size must be positive")
    assert details_of(_FakeCall(to_rpc_status(plain))) == (None, None)


def test_details_of_without_rich_status():
    class Plain:
        def trailing_metadata(self):
            return (("x-request-id", "abc"),)

    assert details_of(Plain()) == (None, None)
    assert details_of(object()) == (None, None)
