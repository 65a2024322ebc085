"""`streamify k8s-secrets`: the Secrets of `k8s/base`, generated on this machine, never committed.

The base's secretGenerator reads them from `k8s/base/secrets/*.env` (git-ignored): a random JWT
secret and media-origin token, the in-cluster PostgreSQL password and the SeaweedFS S3 keys.
Run it once before the first `kubectl apply -k`; files that exist are kept, so the cluster's
Secrets stay the same from one apply to the next (delete a file to rotate what it holds).
"""

from __future__ import annotations

import argparse
import json
import secrets
import string
from collections.abc import Callable
from pathlib import Path

DEFAULT_DIR = Path("k8s") / "base" / "secrets"
_DATABASE_HOST = "postgres.streamify.svc.cluster.local:5432"
_ALPHANUMERIC = string.ascii_letters + string.digits


def _token(length: int = 48) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def _auth() -> dict[str, str]:
    return {"jwt-secret": _token(), "media-internal-token": _token()}


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


def generate(directory: Path) -> list[Path]:
    """Write the files of `directory` that do not exist yet (mode 0600); returns those written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in FILES.items():
        path = directory / name
        if path.exists():
            continue
        text = "".join(f"{key}={value}\n" for key, value in make().items())
        path.touch(mode=0o600)
        path.write_text(text)
        written.append(path)
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
    kept = len(FILES) - len(written)
    if kept:
        print(f"kept {kept} existing file(s) in {args.dir} (delete one to rotate it)")
    return 0
