"""The `streamify` command: run the platform, serve one service, mint tokens, migrate."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from streamify.core.config import Settings


def _settings(args: argparse.Namespace, **overrides) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)


def cmd_run(args: argparse.Namespace) -> int:
    """Embedded single-machine mode: everything local, nothing installed by hand."""
    os.environ.setdefault("STREAMIFY_EMBEDDED", "true")
    settings = _settings(args, grpc_port=args.port, redis_url=args.redis, database_url=args.database_url)
    from streamify.core.auth import mint_token, signing_key
    from streamify.core.logs import configure_logging
    from streamify.metadata import app as metadata_app

    configure_logging(settings)
    token = mint_token(signing_key(settings), "alice", ttl_seconds=24 * 3600, issuer=settings.jwt_issuer)

    def banner(port: int) -> None:
        target = f"{settings.grpc_host}:{port}"
        print(
            "\nStreamify is running (embedded mode)\n"
            f"  Metadata gRPC     {target}   (reflection on: grpcurl -plaintext {target} list)\n"
            f"  Database          {settings.resolved_database_url}\n"
            f"  Cache             {settings.redis_url or 'in-process'}\n"
            f"  Dev token (alice) export TOKEN={token}\n"
            f"  Try               grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" "
            f"-d '{{\"video\": {{\"title\": \"Hello\"}}}}' {target} streamify.v1.MetadataService/CreateVideo\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )

    asyncio.run(metadata_app.run(settings, on_ready=banner))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args, grpc_port=args.port, metrics_port=args.metrics_port)
    from streamify.core.logs import configure_logging

    configure_logging(settings)
    if args.service == "metadata":
        from streamify.metadata import app

        asyncio.run(app.run(settings))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from streamify.core.auth import mint_token, signing_key

    if args.user is None and not args.service:
        print("give --user NAME or --service NAME", file=sys.stderr)
        return 2
    # Without a configured jwt_secret, mint with the embedded dev key the local servers use.
    os.environ.setdefault("STREAMIFY_EMBEDDED", "true")
    settings = Settings()
    kind = "service" if args.service else "user"
    subject = args.service or args.user
    print(mint_token(signing_key(settings), subject, kind=kind, ttl_seconds=args.ttl, issuer=settings.jwt_issuer))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from streamify.core.db import make_engine
    from streamify.metadata import schema

    settings = Settings()
    schema.upgrade(make_engine(settings.resolved_database_url))
    print(f"migrated {settings.resolved_database_url}")
    return 0


def cmd_protos(args: argparse.Namespace) -> int:
    from streamify.core import protogen

    return protogen.main(["--check"] if args.check else [])


def cmd_config(args: argparse.Namespace) -> int:
    from streamify.core.config import settings_table

    print(settings_table())
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamify", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run Streamify on one machine with embedded defaults")
    run.add_argument("--port", type=int, help="gRPC port of the Metadata service (default 50051)")
    run.add_argument("--redis", help="Redis URL for the metadata cache (default: in-process cache)")
    run.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in .streamify/)")
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="serve one service (settings from STREAMIFY_* env)")
    serve.add_argument("service", choices=["metadata"])
    serve.add_argument("--port", type=int)
    serve.add_argument("--metrics-port", type=int)
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="mint a bearer token (development and operations)")
    token.add_argument("--user", help="user id, e.g. alice")
    token.add_argument("--service", help="mint a service identity instead, e.g. upload")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    token.set_defaults(func=cmd_token)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

    config = sub.add_parser("config", help="print the table of STREAMIFY_* settings")
    config.set_defaults(func=cmd_config)

    protos = sub.add_parser("protos", help="regenerate Python stubs from proto/ (--check: only compare)")
    protos.add_argument("--check", action="store_true")
    protos.set_defaults(func=cmd_protos)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
