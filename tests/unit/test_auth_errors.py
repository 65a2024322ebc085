"""Tokens (mint/verify, the dev signing key) and ApiError -> rich gRPC status."""

from __future__ import annotations

import logging
import stat
import time

import grpc
import jwt
import pytest
from google.rpc import status_pb2

from streamify.core import errors
from streamify.core.auth import (
    Principal,
    TokenVerifier,
    current_principal,
    media_grant_key,
    mint_token,
    principal_var,
    signing_key,
    verify_token,
)
from streamify.core.config import Settings
from streamify.core.errors import ApiError, ConfigurationError, details_of, to_rpc_status

pytestmark = pytest.mark.unit

KEY = b"k" * 32


def reason_of(exc: pytest.ExceptionInfo[ApiError]) -> str | None:
    return exc.value.reason


# --- tokens -----------------------------------------------------------------------------------


def test_token_round_trip_user_and_service():
    p = verify_token(KEY, mint_token(KEY, "alice"), "streamify")
    assert p == Principal("alice", "user")
    assert p.user_name == "users/alice" and not p.is_service
    s = verify_token(KEY, mint_token(KEY, "upload", kind="service", issuer="x"), "x")
    assert s.is_service and s.subject == "upload" and s.user_name != "users/upload"


def test_expired_token_says_when_and_what_to_do():
    now = int(time.time())
    token = jwt.encode(
        {"sub": "alice", "kind": "user", "iss": "streamify", "iat": now - 100, "exp": now - 10},
        KEY,
        algorithm="HS256",
    )
    with pytest.raises(ApiError) as exc:
        verify_token(KEY, token, "streamify")
    assert exc.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(exc) == "TOKEN_EXPIRED"
    assert "token expired at" in exc.value.message and "streamify token" in exc.value.message
    assert time.strftime("%Y-%m-%d", time.gmtime(now - 10)) in exc.value.message


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "TOKEN_MISSING"),
        ("", "TOKEN_MISSING"),
        ("not-a-jwt", "TOKEN_INVALID"),
        (mint_token(b"another key that is long enough!", "alice"), "TOKEN_INVALID"),
        (mint_token(KEY, "alice", issuer="someone-else"), "TOKEN_INVALID"),
    ],
)
def test_missing_wrong_key_wrong_issuer(token, reason):
    with pytest.raises(ApiError) as exc:
        verify_token(KEY, token, "streamify")
    assert exc.value.code is grpc.StatusCode.UNAUTHENTICATED and reason_of(exc) == reason


def test_wrong_key_message_is_clear():
    with pytest.raises(ApiError) as exc:
        verify_token(KEY, mint_token(b"x" * 32, "alice"), "streamify")
    assert "signature" in exc.value.message


@pytest.mark.parametrize("subject", ["", "Alice", "-alice", "a" * 64, "al ice", "users/alice"])
def test_bad_subjects_are_refused_when_minting(subject):
    with pytest.raises(ValueError, match="invalid subject"):
        mint_token(KEY, subject)


def test_bad_subject_in_a_signed_token_is_refused():
    now = int(time.time())
    token = jwt.encode(
        {"sub": "../admin", "iss": "streamify", "iat": now, "exp": now + 60}, KEY, algorithm="HS256"
    )
    with pytest.raises(ApiError) as exc:
        verify_token(KEY, token, "streamify")
    assert reason_of(exc) == "TOKEN_INVALID" and "subject" in exc.value.message


def test_verifier_parses_bearer_and_caches_until_expiry():
    verify = TokenVerifier(KEY, "streamify")
    header = f"Bearer {mint_token(KEY, 'bob')}"
    assert verify(header) == Principal("bob", "user")
    assert verify(header) is verify(header)  # cached
    with pytest.raises(ApiError) as exc:
        verify("Basic Ym9iOnB3")
    assert reason_of(exc) == "TOKEN_INVALID"
    with pytest.raises(ApiError) as exc:
        verify(None)
    assert reason_of(exc) == "TOKEN_MISSING"


def test_current_principal_outside_a_call_is_unauthenticated():
    with pytest.raises(ApiError) as exc:
        current_principal()
    assert exc.value.code is grpc.StatusCode.UNAUTHENTICATED
    token = principal_var.set(Principal("alice", "user"))
    try:
        assert current_principal().subject == "alice"
    finally:
        principal_var.reset(token)


# --- signing key ------------------------------------------------------------------------------


def test_signing_key_prefers_the_secret(tmp_path):
    s = Settings(jwt_secret="s" * 32, data_dir=tmp_path, embedded=True)
    assert signing_key(s) == b"s" * 32
    assert not (tmp_path / "dev-signing.key").exists()


def test_dev_key_is_created_private_shared_and_warned_about(tmp_path, caplog):
    s = Settings(data_dir=tmp_path / "state", embedded=True)
    with caplog.at_level(logging.WARNING, logger="streamify.core.auth"):
        key = signing_key(s)
    path = tmp_path / "state" / "dev-signing.key"
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32
    assert signing_key(Settings(data_dir=tmp_path / "state", embedded=True)) == key
    assert any("DEVELOPMENT" in r.getMessage() for r in caplog.records)
    # A token minted by one process (the CLI) verifies in another (a server).
    assert verify_token(signing_key(s), mint_token(key, "alice"), "streamify").subject == "alice"


def test_no_secret_outside_embedded_mode_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="STREAMIFY_JWT_SECRET"):
        signing_key(Settings(data_dir=tmp_path, embedded=False, jwt_secret=None))


@pytest.mark.parametrize("name", ["jwt_secret", "media_grant_secret"])
def test_a_secret_shorter_than_32_bytes_is_refused_outside_embedded_mode(tmp_path, name):
    def key(secret: str, embedded: bool = False) -> bytes:
        settings = Settings(data_dir=tmp_path, embedded=embedded, **{name: secret})
        return signing_key(settings) if name == "jwt_secret" else media_grant_key(settings)

    assert key("k" * 32) == b"k" * 32
    with pytest.raises(ConfigurationError) as caught:
        key("k" * 31)
    assert str(caught.value) == (
        f"STREAMIFY_{name.upper()} is 31 bytes; use at least 32 random ones, "
        "e.g. `openssl rand -base64 48`"
    )
    assert key("short", embedded=True) == b"short"  # one machine, the developer's own


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
