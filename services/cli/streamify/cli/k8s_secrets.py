"""`streamify k8s-secrets`: the Secrets of `k8s/base`, generated on this machine, never committed.

The base's secretGenerator reads them from `k8s/base/secrets/*.env` (git-ignored): the media
grant, page token and media-origin secrets, the in-cluster PostgreSQL password, the SeaweedFS S3
keys, and the token keys (streamify.core.token_keys): `token.keys` holds every identity's
private key and stays on this machine (mint tokens with `streamify token --keys-file`); each
service's pod gets only its own (`keys-<identity>.env`), every server the public keys
(`trusted-keys.env`).
Run it once before the first `kubectl apply -k`; files that exist are kept, so the cluster's
Secrets stay the same from one apply to the next (delete a file to rotate what it holds; delete
`token.keys` to rotate every token key).
"""

from __future__ import annotations

import argparse
import json
import secrets
import string
from collections.abc import Callable
from pathlib import Path

from streamify.core import token_keys

DEFAULT_DIR = Path("k8s") / "base" / "secrets"
_DATABASE_HOST = "postgres.streamify.svc.cluster.local:5432"
_ALPHANUMERIC = string.ascii_letters + string.digits


def _token(length: int = 48) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def _auth() -> dict[str, str]:
    return {
        "media-grant-secret": _token(),
        "page-token-secret": _token(),
        "media-internal-token": _token(),
    }


def _database() -> dict[str, str]:
    password = _token(32)
    url = f"postgresql+psycopg://streamify:{password}@{_DATABASE_HOST}/streamify"
    return {"url": url, "password": password}


def _s3() -> dict[str, str]:
    key_id, secret_key = _token(20).upper(), _token(40)
    identities = {
        "identities": [
            {
                "name": "streamify",
                "credentials": [{"accessKey": key_id, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    return {
        "access-key-id": key_id,
        "secret-access-key": secret_key,
        "s3.json": json.dumps(identities, separators=(",", ":")),
    }


# file name -> what it holds; the secretGenerator of k8s/base/kustomization.yaml reads them.
FILES: dict[str, Callable[[], dict[str, str]]] = {
    "auth.env": _auth,
    "database.env": _database,
    "s3.env": _s3,
}


TOKEN_KEYS_FILE = "token.keys"
# the pods that sign tokens; each gets a Secret `streamify-keys-<identity>` with its key only
POD_IDENTITIES = ("upload", "transcode", "gateway", "worker")


def _write(path: Path, text: str) -> bool:
    """Write `text` to `path` (0600) unless it already holds it; whether it wrote."""
    if path.exists() and path.read_text() == text:
        return False
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)
    return True


def _env(values: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def _token_key_files(directory: Path) -> dict[str, str]:
    """token.keys (created once) and the files derived from it, by name."""
    master = directory / TOKEN_KEYS_FILE
    if master.exists():
        keys = token_keys.parse_private_keys(master.read_text(), str(master))
    else:
        keys = token_keys.generate()
    files = {TOKEN_KEYS_FILE: token_keys.format_keys(keys, public=False).replace(",", "\n") + "\n"}
    files["trusted-keys.env"] = _env({"trusted-keys": token_keys.format_keys(keys, public=True)})
    for identity in POD_IDENTITIES:
        own = token_keys.format_keys({identity: keys[identity]}, public=False)
        files[f"keys-{identity}.env"] = _env({"signing-keys": own})
    return files


def generate(directory: Path) -> list[Path]:
    """Write the files of `directory` that do not exist yet (mode 0600); returns those written.
    The per-pod key files are re-derived from token.keys, so they always match it."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in FILES.items():
        path = directory / name
        if not path.exists() and _write(path, _env(make())):
            written.append(path)
    for name, text in _token_key_files(directory).items():
        if _write(directory / name, text):
            written.append(directory / name)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"where the secretGenerator reads them (default {DEFAULT_DIR})",
    )


def run(args: argparse.Namespace) -> int:
    written = generate(args.dir)
    for path in written:
        print(f"wrote {path}")
    kept = len(FILES) + len(POD_IDENTITIES) + 2 - len(written)
    if kept:
        print(f"kept {kept} existing file(s) in {args.dir} (delete one to rotate it)")
    return 0
