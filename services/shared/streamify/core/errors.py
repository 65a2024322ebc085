"""Typed API errors and their mapping onto rich gRPC statuses (google.rpc.Status).

Handlers raise :class:`ApiError` (usually through one of the constructors below); the server
wrapper in ``streamify.core.server`` turns it into a gRPC status whose message a person can act
on, with machine-readable details: ``google.rpc.ErrorInfo`` (``reason`` + ``domain`` +
``metadata``) and, for bad input, ``google.rpc.BadRequest`` naming each field.

Clients (tests, CLIs) read those details back with :func:`details_of`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "DOMAIN",
    "ApiError",
    "ConfigurationError",
    "Violation",
    "aborted",
    "already_exists",
    "details_of",
    "failed_precondition",
    "internal",
    "invalid_argument",
    "not_found",
    "permission_denied",
    "resource_exhausted",
    "status_of",
    "to_rpc_status",
    "unauthenticated",
    "unavailable",
]

DOMAIN = "streamify.dev"
_DETAILS_KEY = "grpc-status-details-bin"

# (field, description) or (field, description, reason); `field` is a dotted path such as
# "video.title" (the form google.rpc.BadRequest.FieldViolation expects).
Violation = tuple[str, str] | tuple[str, str, str]


class ConfigurationError(RuntimeError):
    """The process is misconfigured (a missing secret, an unusable setting). Not an API error:
    it stops the process at startup with a message naming the setting to fix."""


class ApiError(Exception):
    """An error meant for the API caller: a status code, a message a person understands and
    optional machine-readable details."""

    __slots__ = ("code", "message", "metadata", "reason", "violations")

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        violations: Iterable[Violation] = (),
    ) -> None:
        if code is grpc.StatusCode.OK:
            raise ValueError("ApiError needs a non-OK status code")
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata) if metadata else {}
        self.violations: tuple[Violation, ...] = tuple(violations)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}" + (f" [{self.reason}]" if self.reason else "")

    def __repr__(self) -> str:
        return (
            f"ApiError(code={self.code.name}, message={self.message!r}, reason={self.reason!r}, "
            f"violations={list(self.violations)!r})"
        )

    def to_status_proto(self) -> status_pb2.Status:
        """The google.rpc.Status this error is sent as."""
        details: list[any_pb2.Any] = []
        if self.reason:
            info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN)
            info.metadata.update(self.metadata)
            packed = any_pb2.Any()
            packed.Pack(info)
            details.append(packed)
        if self.violations:
            bad = error_details_pb2.BadRequest()
            for v in self.violations:
                fv = bad.field_violations.add(field=v[0], description=v[1])
                if len(v) > 2 and v[2]:
                    fv.reason = v[2]
            packed = any_pb2.Any()
            packed.Pack(bad)
            details.append(packed)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=details)


def to_rpc_status(err: ApiError) -> grpc.Status:
    """The grpc.Status to pass to ``context.abort_with_status``: code, message and the
    ``grpc-status-details-bin`` trailer carrying the google.rpc.Status."""
    status: grpc.Status = rpc_status.to_status(err.to_status_proto())  # grpc_status is untyped
    return status


# --- constructors -------------------------------------------------------------------------


def _summary(violations: Sequence[Violation]) -> str:
    parts = [f"{v[0]}: {v[1]}" if v[0] else v[1] for v in violations[:5]]
    more = len(violations) - len(parts)
    text = "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
    return f"invalid request: {text}"


def invalid_argument(
    violations: Sequence[Violation] | str,
    *,
    message: str | None = None,
    reason: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> ApiError:
    """INVALID_ARGUMENT. Give a list of (field, description[, reason]) violations (the message
    then summarises them and the details carry a google.rpc.BadRequest), or just a message."""
    if isinstance(violations, str):
        return ApiError(
            grpc.StatusCode.INVALID_ARGUMENT, violations, reason=reason, metadata=metadata
        )
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        message or _summary(violations),
        reason=reason,
        metadata=metadata,
        violations=violations,
    )


def _kind_of(resource_name: str) -> str:
    """'videos/x' -> 'video'; 'videos/x/renditions/720p' -> 'rendition'."""
    parts = resource_name.strip("/").split("/")
    if len(parts) >= 2 and len(parts) % 2 == 0:
        collection = parts[-2]
        return collection.removesuffix("s")
    return "resource"


def not_found(resource_name: str, *, kind: str | None = None) -> ApiError:
    """NOT_FOUND: "video 'videos/x' not found"."""
    return ApiError(
        grpc.StatusCode.NOT_FOUND,
        f"{kind or _kind_of(resource_name)} '{resource_name}' not found",
        reason="RESOURCE_NOT_FOUND",
        metadata={"resource_name": resource_name},
    )


def already_exists(resource_name: str, *, kind: str | None = None) -> ApiError:
    """ALREADY_EXISTS: "video 'videos/x' already exists"."""
    return ApiError(
        grpc.StatusCode.ALREADY_EXISTS,
        f"{kind or _kind_of(resource_name)} '{resource_name}' already exists",
        reason="RESOURCE_ALREADY_EXISTS",
        metadata={"resource_name": resource_name},
    )


def failed_precondition(
    message: str, reason: str, *, metadata: Mapping[str, str] | None = None
) -> ApiError:
    """FAILED_PRECONDITION: the system is not in the state the call needs (retrying the same
    call will not help until the state changes)."""
    return ApiError(grpc.StatusCode.FAILED_PRECONDITION, message, reason=reason, metadata=metadata)


def aborted(message: str, reason: str, *, metadata: Mapping[str, str] | None = None) -> ApiError:
    """ABORTED: a concurrency conflict (etag mismatch, lost race); retry the whole
    read-modify-write."""
    return ApiError(grpc.StatusCode.ABORTED, message, reason=reason, metadata=metadata)


def permission_denied(
    message: str = "permission denied",
    *,
    reason: str = "PERMISSION_DENIED",
    metadata: Mapping[str, str] | None = None,
) -> ApiError:
    return ApiError(grpc.StatusCode.PERMISSION_DENIED, message, reason=reason, metadata=metadata)


def unauthenticated(
    message: str, reason: str, *, metadata: Mapping[str, str] | None = None
) -> ApiError:
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, message, reason=reason, metadata=metadata)


def resource_exhausted(
    message: str,
    *,
    reason: str = "RESOURCE_EXHAUSTED",
    metadata: Mapping[str, str] | None = None,
) -> ApiError:
    return ApiError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, reason=reason, metadata=metadata)


def unavailable(
    message: str,
    *,
    reason: str = "UNAVAILABLE",
    metadata: Mapping[str, str] | None = None,
) -> ApiError:
    """UNAVAILABLE: transient; the caller may retry with backoff."""
    return ApiError(grpc.StatusCode.UNAVAILABLE, message, reason=reason, metadata=metadata)


def internal(message: str = "internal error", *, reason: str | None = None) -> ApiError:
    return ApiError(grpc.StatusCode.INTERNAL, message, reason=reason)


# --- client side ---------------------------------------------------------------------------


def _trailing_pairs(rpc_error: Any) -> Iterable[tuple[str, Any]]:
    try:
        md = rpc_error.trailing_metadata()
    except Exception:  # noqa: BLE001 - not a call, or no metadata yet
        return ()
    if md is None:
        return ()
    if isinstance(md, Mapping) and not hasattr(md, "get_all"):
        return md.items()
    # grpc.aio.Metadata iterates as (key, value); sync calls give a tuple of _Metadatum.
    return ((item[0], item[1]) for item in md)


def status_of(rpc_error: Any) -> status_pb2.Status | None:
    """The google.rpc.Status carried by a failed call (sync or aio), or None."""
    for key, value in _trailing_pairs(rpc_error):
        if key == _DETAILS_KEY:
            return status_pb2.Status.FromString(value)
    return None


def details_of(
    rpc_error: Any,
) -> tuple[error_details_pb2.ErrorInfo | None, error_details_pb2.BadRequest | None]:
    """(ErrorInfo, BadRequest) from a grpc.RpcError / grpc.aio.AioRpcError; None where absent."""
    status = status_of(rpc_error)
    info: error_details_pb2.ErrorInfo | None = None
    bad: error_details_pb2.BadRequest | None = None
    if status is None:
        return None, None
    for detail in status.details:
        if info is None and detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        elif bad is None and detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
    return info, bad
