"""Outside embedded mode a process refuses to start without what it needs to sign or check
tokens and grants, or with a secret too short to resist an offline search: one line on stderr,
exit status 2, no traceback, so an operator sees what to fix. Each role's real entry point, each
given everything it needs but the one thing under test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.keys import MEDIA_GRANT_SECRET, PAGE_TOKEN_SECRET, TRUSTED_KEYS, signing_keys_of

pytestmark = pytest.mark.security

BIN = Path(sys.executable).parent
ROLES = {
    "metadata": [str(BIN / "streamify"), "serve", "metadata", "--port", "0"],
    "upload": [str(BIN / "streamify"), "serve", "upload", "--port", "0"],
    "transcode": [str(BIN / "streamify"), "serve", "transcode", "--port", "0"],
    "worker": [str(BIN / "streamify-worker"), "--orchestrator", "127.0.0.1:9"],
    "media-authz": [sys.executable, "-m", "streamify.gateway.authz", "--port", "0"],
}
TRUSTED = ("STREAMIFY_TRUSTED_KEYS", TRUSTED_KEYS)
GRANTS = ("STREAMIFY_MEDIA_GRANT_SECRET", MEDIA_GRANT_SECRET)
PAGES = ("STREAMIFY_PAGE_TOKEN_SECRET", PAGE_TOKEN_SECRET)


def signing(identity: str) -> tuple[str, str]:
    return ("STREAMIFY_SIGNING_KEYS", signing_keys_of(identity))


# What each role needs (its own token key only), as in k8s/base.
NEEDS = {
    "metadata": dict([TRUSTED, GRANTS, PAGES]),
    "upload": dict([TRUSTED, signing("upload")]),
    "transcode": dict([TRUSTED, signing("transcode")]),
    "worker": dict([signing("worker")]),
    "media-authz": dict([signing("gateway"), GRANTS]),
}
MISSING_SAYS = {
    "STREAMIFY_TRUSTED_KEYS": "no token verification keys: set STREAMIFY_TRUSTED_KEYS",
    "STREAMIFY_MEDIA_GRANT_SECRET": "STREAMIFY_MEDIA_GRANT_SECRET is not set",
    "STREAMIFY_PAGE_TOKEN_SECRET": "STREAMIFY_PAGE_TOKEN_SECRET is not set",
}
IDENTITY = {"upload": "upload", "transcode": "transcode", "worker": "worker"}
IDENTITY["media-authz"] = "gateway"


def start(role: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
    clean |= {"STREAMIFY_DATA_DIR": str(tmp_path), "STREAMIFY_LOG_LEVEL": "WARNING", **env}
    return subprocess.run(
        ROLES[role], env=clean, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def refused(done: subprocess.CompletedProcess[str], says: str) -> None:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "refusing to start: " + says in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


CASES = [(role, name) for role, needs in NEEDS.items() for name in needs]


@pytest.mark.parametrize(("role", "missing"), CASES, ids=[f"{r}-{m[10:]}" for r, m in CASES])
def test_each_missing_key_or_secret_stops_the_process_with_one_clear_line(role, missing, tmp_path):
    env = {k: v for k, v in NEEDS[role].items() if k != missing}
    if missing == "STREAMIFY_SIGNING_KEYS":
        says = f"this process signs tokens as {IDENTITY[role]!r} but STREAMIFY_SIGNING_KEYS"
    else:
        says = MISSING_SAYS[missing]
    refused(start(role, tmp_path, **env), says)


@pytest.mark.parametrize("role", sorted(IDENTITY))
def test_another_identitys_key_does_not_let_a_process_start(role, tmp_path):
    """A pod given the operator's key (or any other) does not sign as itself with it."""
    env = {**NEEDS[role], "STREAMIFY_SIGNING_KEYS": signing_keys_of("operator")}
    refused(start(role, tmp_path, **env), f"this process signs tokens as {IDENTITY[role]!r}")


@pytest.mark.parametrize(
    ("role", "name"),
    [
        ("metadata", "STREAMIFY_MEDIA_GRANT_SECRET"),
        ("metadata", "STREAMIFY_PAGE_TOKEN_SECRET"),
        ("media-authz", "STREAMIFY_MEDIA_GRANT_SECRET"),
    ],
)
def test_a_short_secret_stops_the_process(role, name, tmp_path):
    done = start(role, tmp_path, **{**NEEDS[role], name: "change-me"})
    refused(done, f"{name} is 9 bytes; use at least 32 random ones")
