"""Mint a bearer token: `streamify token` locally, `streamify-token` wherever the key is.

A user token is signed with the `users` key, a service token with that service's own key
(streamify.core.token_keys): from --keys-file, else STREAMIFY_SIGNING_KEYS, else (embedded
mode) the development keys the local servers use.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DAY = 24 * 3600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="user id, e.g. alice")
    parser.add_argument("--service", help="mint a service identity's token instead, e.g. operator")
    parser.add_argument("--ttl", type=int, default=DAY, help="lifetime in seconds")
    parser.add_argument(
        "--keys-file",
        type=Path,
        help="private keys to sign with, `identity=key` lines (e.g. the `operator.keys` "
        "written by `streamify k8s-secrets`)",
    )


def run(args: argparse.Namespace) -> int:
    from streamify.core import token_keys
    from streamify.core.auth import mint_token
    from streamify.core.config import Settings
    from streamify.core.errors import ConfigurationError

    if args.user is None and not args.service:
        print("give --user NAME or --service NAME", file=sys.stderr)
        return 2
    identity = args.service or token_keys.USERS
    os.environ.setdefault("STREAMIFY_EMBEDDED", "true")
    settings = Settings()
    try:
        if args.keys_file is not None:
            keys = token_keys.parse_private_keys(_read(args.keys_file), str(args.keys_file))
            if identity not in keys:
                raise ConfigurationError(f"{args.keys_file} has no key for {identity!r}")
            key = keys[identity]
        else:
            key = token_keys.signing_key(settings, identity)
        token = mint_token(
            key,
            args.user if args.user is not None and not args.service else None,
            kind="service" if args.service else "user",
            ttl_seconds=args.ttl,
            issuer=settings.jwt_issuer,
        )
    except (ConfigurationError, ValueError) as exc:
        print(f"streamify token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _read(path: Path) -> str:
    from streamify.core.errors import ConfigurationError

    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamify-token", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
