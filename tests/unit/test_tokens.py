"""Bearer tokens and their keys: each identity signs only as itself, servers trust public keys
only, and every forgery a stolen token or public key allows is refused."""

from __future__ import annotations

import base64
import logging
import stat
import time

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from streamify.core import access, token_keys
from streamify.core.auth import (
    Principal,
    TokenVerifier,
    current_principal,
    mint_token,
    principal_var,
    verify_token,
)
from streamify.core.config import Settings
from streamify.core.errors import ApiError, ConfigurationError
from streamify.core.shared_secrets import media_grant_key, page_token_key
from streamify.core.token_keys import USERS
from tests.support.keys import SIGNING_KEYS, TEST_KEYS, TRUSTED_KEYS

pytestmark = pytest.mark.unit

TRUSTED = {i: k.public for i, k in TEST_KEYS.items()}


def reason_of(exc: pytest.ExceptionInfo[ApiError]) -> str | None:
    return exc.value.reason


def refused(token: str | None) -> ApiError:
    with pytest.raises(ApiError) as exc:
        verify_token(TRUSTED, token, "streamify")
    assert exc.value.code is grpc.StatusCode.UNAUTHENTICATED
    return exc.value


def forged(key_identity: str, claims: dict, *, kid: str | None = None) -> str:
    now = int(time.time())
    body = {"iss": "streamify", "iat": now, "exp": now + 60, **claims}
    headers = {"kid": kid if kid is not None else key_identity}
    return jwt.encode(body, TEST_KEYS[key_identity].private, algorithm="EdDSA", headers=headers)


# --- minting and verifying ------------------------------------------------------------------


def test_token_round_trip_user_and_service():
    p = verify_token(TRUSTED, mint_token(TEST_KEYS[USERS], "alice"), "streamify")
    assert p == Principal("alice", "user")
    assert p.user_name == "users/alice" and not p.is_service
    token = mint_token(TEST_KEYS["upload"], kind="service", issuer="x")
    s = verify_token(TRUSTED, token, "x")
    assert s.is_service and s.subject == "upload" and s.user_name != "users/upload"
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "upload", "typ": "JWT"}


def test_a_key_mints_only_its_own_identity():
    with pytest.raises(ValueError, match="signs only 'upload' tokens"):
        mint_token(TEST_KEYS["upload"], "transcode", kind="service")
    with pytest.raises(ValueError, match="user tokens are signed with the 'users' key"):
        mint_token(TEST_KEYS["gateway"], "alice")


@pytest.mark.parametrize(
    ("key", "claims", "kid"),
    [
        ("upload", {"sub": "alice", "kind": "user"}, None),  # a service key posing as a user
        ("upload", {"sub": "transcode", "kind": "service"}, None),  # as another service
        ("users", {"sub": "operator", "kind": "service"}, None),  # the users key as a service
        ("gateway", {"sub": "operator", "kind": "service"}, "operator"),  # kid of another key
        ("upload", {"sub": "upload", "kind": "service"}, "metadata"),  # a kid nobody trusts
    ],
)
def test_tokens_a_stolen_key_could_forge_for_others_are_refused(key, claims, kid):
    error = refused(forged(key, claims, kid=kid))
    assert error.reason == "TOKEN_INVALID"


def test_the_public_key_as_an_hmac_secret_does_not_verify():
    """The classic algorithm confusion: sign HS256 with the (public) verification key."""
    public = TEST_KEYS[USERS].public.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    now = int(time.time())
    claims = {"sub": "alice", "kind": "user", "iss": "streamify", "iat": now, "exp": now + 60}
    for secret in (public, token_keys.public_key_text(TEST_KEYS[USERS].public).encode()):
        token = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": USERS})
        assert "EdDSA" in refused(token).message


def test_an_unsigned_token_is_refused():
    now = int(time.time())
    claims = {"sub": "alice", "kind": "user", "iss": "streamify", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": USERS})
    assert refused(token).reason == "TOKEN_INVALID"
    assert refused(token + "AAAA").reason == "TOKEN_INVALID"


def test_expired_token_says_when_and_what_to_do():
    now = int(time.time())
    token = forged(USERS, {"sub": "alice", "kind": "user", "iat": now - 100, "exp": now - 10})
    error = refused(token)
    assert error.reason == "TOKEN_EXPIRED"
    assert "token expired at" in error.message and "streamify token" in error.message
    assert time.strftime("%Y-%m-%d", time.gmtime(now - 10)) in error.message


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "TOKEN_MISSING"),
        ("", "TOKEN_MISSING"),
        ("not-a-jwt", "TOKEN_INVALID"),
        (mint_token(token_keys.generate((USERS,))[USERS], "alice"), "TOKEN_INVALID"),
        (mint_token(TEST_KEYS[USERS], "alice", issuer="someone-else"), "TOKEN_INVALID"),
    ],
)
def test_missing_wrong_key_wrong_issuer(token, reason):
    assert refused(token).reason == reason


def test_wrong_key_message_names_the_key():
    other = token_keys.generate((USERS,))[USERS]
    assert "does not match the 'users' key" in refused(mint_token(other, "alice")).message


@pytest.mark.parametrize("subject", ["", "Alice", "-alice", "a" * 64, "al ice", "users/alice"])
def test_bad_subjects_are_refused_when_minting(subject):
    with pytest.raises(ValueError, match="invalid subject"):
        mint_token(TEST_KEYS[USERS], subject)


def test_bad_subject_in_a_signed_token_is_refused():
    error = refused(forged(USERS, {"sub": "../admin"}))
    assert error.reason == "TOKEN_INVALID" and "subject" in error.message


def test_verifier_parses_bearer_and_caches_until_expiry():
    verify = TokenVerifier(TRUSTED, "streamify")
    header = f"Bearer {mint_token(TEST_KEYS[USERS], 'bob')}"
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


# --- which identity may call what ---------------------------------------------------------


def denied(principal: Principal, path: str) -> ApiError:
    with pytest.raises(ApiError) as exc:
        access.check(principal, path)
    assert exc.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert exc.value.reason == "METHOD_NOT_ALLOWED"
    return exc.value


def test_each_service_identity_calls_only_its_own_methods():
    paths = {p for allowed in access.SERVICE_METHODS.values() for p in allowed}
    paths |= {
        "/streamify.v1.UploadService/CreateUpload",
        "/streamify.v1.MetadataService/DeleteVideo",
    }
    for identity, allowed in access.SERVICE_METHODS.items():
        service = Principal(identity, "service")
        for path in sorted(paths):
            if path in allowed:
                access.check(service, path)
            else:
                assert f"the {identity!r} service identity may not call {path}" in (
                    denied(service, path).message
                )
    assert access.SERVICE_METHODS["gateway"] == {access.GET_VIDEO, access.LIST_VIDEO_EVENTS}
    assert access.SERVICE_METHODS["worker"] == {access.WORKER_CONNECT}
    denied(Principal("metadata", "service"), access.GET_VIDEO)  # no such identity: nothing


def test_users_reach_the_public_api_but_not_the_internal_methods():
    alice = Principal("alice", "user")
    access.check(alice, access.GET_VIDEO)
    access.check(alice, "/streamify.v1.UploadService/CreateUpload")
    for path in access.INTERNAL_METHODS:
        assert "internal" in denied(alice, path).message


def test_the_operator_may_call_everything():
    for path in (*access.INTERNAL_METHODS, access.GET_VIDEO, "/streamify.v1.X/Y"):
        access.check(Principal("operator", "service"), path)


def test_method_paths_come_from_the_descriptors():
    assert access.UPDATE_VIDEO_STATUS == "/streamify.v1.MetadataService/UpdateVideoStatus"
    assert access.WORKER_CONNECT == "/streamify.v1.TranscodeWorkerService/Connect"
    from streamify.v1 import metadata_service_pb2

    with pytest.raises(KeyError):
        access.method_path(metadata_service_pb2.DESCRIPTOR, "MetadataService", "Nope")


# --- keys from the settings -------------------------------------------------------------------


def test_configured_keys_sign_and_verify(tmp_path):
    s = Settings(signing_keys=SIGNING_KEYS, trusted_keys=TRUSTED_KEYS, data_dir=tmp_path)
    token = mint_token(token_keys.signing_key(s, "worker"), kind="service")
    assert verify_token(token_keys.trusted_keys(s), token).subject == "worker"
    assert not list(tmp_path.iterdir())  # no development key was made


def test_a_process_without_its_key_or_the_public_keys_does_not_start(tmp_path):
    own = token_keys.format_keys({"gateway": TEST_KEYS["gateway"]}, public=False)
    s = Settings(signing_keys=own, data_dir=tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        token_keys.signing_key(s, "upload")
    assert "signs tokens as 'upload' but STREAMIFY_SIGNING_KEYS has no key for it" in str(
        caught.value
    )
    with pytest.raises(ConfigurationError, match="set STREAMIFY_TRUSTED_KEYS"):
        token_keys.trusted_keys(s)


def test_a_signing_key_that_its_public_key_contradicts_is_refused(tmp_path):
    stray = token_keys.format_keys(token_keys.generate(("upload",)), public=False)
    s = Settings(signing_keys=stray, trusted_keys=TRUSTED_KEYS, data_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="does not match its public key"):
        token_keys.signing_key(s, "upload")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("upload", "'upload' is not `identity=key`"),
        ("root=" + "A" * 43, "unknown identity 'root'"),
        ("upload=abc", "the key of 'upload' is not 32 bytes"),
        ("upload=" + "!" * 43, "the key of 'upload' is not 32 bytes"),
        (f"{TRUSTED_KEYS.split(',')[1]},{TRUSTED_KEYS.split(',')[1]}", "'upload' is listed twice"),
    ],
)
def test_malformed_key_lists_say_what_is_wrong(text, message):
    with pytest.raises(ConfigurationError) as caught:
        token_keys.parse_public_keys(text)
    assert message in str(caught.value) and str(caught.value).startswith("STREAMIFY_TRUSTED_KEYS")


def test_key_text_is_the_jwk_form():
    text = token_keys.public_key_text(TEST_KEYS["upload"].public)
    raw = base64.urlsafe_b64decode(text + "=")
    assert len(text) == 43 and len(raw) == 32
    again = token_keys.parse_private_keys(token_keys.format_keys(TEST_KEYS, public=False))
    assert token_keys.format_keys(again, public=True) == TRUSTED_KEYS


def test_dev_keys_are_created_private_shared_and_warned_about(tmp_path, caplog):
    s = Settings(data_dir=tmp_path / "state", embedded=True)
    with caplog.at_level(logging.WARNING, logger="streamify.core.dev_keys"):
        key = token_keys.signing_key(s, USERS)
    path = tmp_path / "state" / token_keys.DEV_KEYS_FILE
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(token_keys.parse_private_keys(path.read_text())) == set(token_keys.IDENTITIES)
    assert any("DEVELOPMENT" in r.getMessage() for r in caplog.records)
    # A token minted by one process (the CLI) verifies in another (a server).
    other = Settings(data_dir=tmp_path / "state", embedded=True)
    token = mint_token(key, "alice")
    assert verify_token(token_keys.trusted_keys(other), token).subject == "alice"


def test_no_keys_outside_embedded_mode_is_a_configuration_error(tmp_path):
    s = Settings(data_dir=tmp_path, embedded=False)
    with pytest.raises(ConfigurationError, match="STREAMIFY_SIGNING_KEYS"):
        token_keys.signing_key(s, "upload")
    with pytest.raises(ConfigurationError, match="STREAMIFY_TRUSTED_KEYS"):
        token_keys.trusted_keys(s)


# --- the HMAC secrets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "derive"),
    [("media_grant_secret", media_grant_key), ("page_token_secret", page_token_key)],
)
def test_hmac_secrets_are_long_and_required_outside_embedded_mode(tmp_path, name, derive):
    def key(secret: str | None, embedded: bool = False) -> bytes:
        return derive(Settings(data_dir=tmp_path, embedded=embedded, **{name: secret}))

    assert key("k" * 32) == b"k" * 32
    with pytest.raises(ConfigurationError) as caught:
        key("k" * 31)
    assert str(caught.value) == (
        f"STREAMIFY_{name.upper()} is 31 bytes; use at least 32 random ones, "
        "e.g. `openssl rand -base64 48`"
    )
    with pytest.raises(ConfigurationError, match=f"STREAMIFY_{name.upper()} is not set"):
        key(None)
    assert key("short", embedded=True) == b"short"  # one machine, the developer's own
    dev = key(None, embedded=True)
    assert len(dev) == 32 and key(None, embedded=True) == dev


def test_the_two_derived_development_secrets_differ(tmp_path):
    s = Settings(data_dir=tmp_path, embedded=True)
    assert media_grant_key(s) != page_token_key(s)
