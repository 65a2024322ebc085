"""Mint a bearer token: `streamify token` locally, `streamify-token` in any image (operations).

Without a configured jwt_secret it signs with the embedded dev key the local servers use.
"""

from __future__ import annotations

import argparse
import os
import sys

DAY = 24 * 3600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="user id, e.g. alice")
    parser.add_argument("--service", help="mint a service identity instead, e.g. upload")
    parser.add_argument("--ttl", type=int, default=DAY, help="lifetime in seconds")


def run(args: argparse.Namespace) -> int:
    from streamify.core.auth import mint_token, signing_key
    from streamify.core.config import Settings

    if args.user is None and not args.service:
        print("give --user NAME or --service NAME", file=sys.stderr)
        return 2
    os.environ.setdefault("STREAMIFY_EMBEDDED", "true")
    settings = Settings()
    print(
        mint_token(
            signing_key(settings),
            args.service or args.user,
            kind="service" if args.service else "user",
            ttl_seconds=args.ttl,
            issuer=settings.jwt_issuer,
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamify-token", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
