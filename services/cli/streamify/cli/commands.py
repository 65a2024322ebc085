"""The `streamify` command: run the platform, serve one service, mint tokens, migrate."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from streamify.cli import k8s_secrets, keys_command
from streamify.core import token_command
from streamify.core.config import Settings


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]  # the flags are Settings fields by name


def cmd_run(args: argparse.Namespace) -> int:
    """Embedded single-machine mode: everything local, nothing installed by hand."""
    os.environ.setdefault("STREAMIFY_EMBEDDED", "true")
    settings = _settings(
        args, redis_url=args.redis, database_url=args.database_url, s3_endpoint_url=args.s3_endpoint
    )
    from streamify.cli.mesh import MeshPorts, run_mesh
    from streamify.core.logs import configure_logging
    from streamify.core.supervisor import ChildFailed

    configure_logging(settings)
    defaults = MeshPorts()
    ports = MeshPorts(
        metadata=(args.port, args.port + 10) if args.port else defaults.metadata,
        upload=(args.upload_port, args.upload_port + 10) if args.upload_port else defaults.upload,
        transcode=args.transcode_port or defaults.transcode,
        **MeshPorts.around_gateway(args.gateway_port or defaults.gateway),
        metrics=defaults.metrics if args.metrics_port is None else args.metrics_port,
        workers=defaults.workers if args.workers is None else args.workers,
    )
    try:
        asyncio.run(run_mesh(settings, ports))
    except (ChildFailed, RuntimeError) as exc:
        print(f"streamify run: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from streamify.core.entrypoint import serve_service, settings_for

    if args.service == "metadata":
        from streamify.metadata.app import run
    elif args.service == "upload":
        from streamify.upload.app import run
    else:
        from streamify.transcode.orchestrator.app import run
    return serve_service(settings_for(args), run)


def cmd_worker(args: argparse.Namespace) -> int:
    from streamify.transcode.worker.main import main as worker_main

    flags = ["--orchestrator", args.orchestrator] if args.orchestrator else []
    return worker_main(flags + (["--slots", str(args.slots)] if args.slots else []))


def cmd_migrate(args: argparse.Namespace) -> int:
    """Every component's migrations (each has its own Alembic version table) on the database."""
    from streamify.core.db import make_engine
    from streamify.core.queue import database as queue_schema
    from streamify.metadata import schema as metadata_schema
    from streamify.transcode.orchestrator import schema as transcode_schema
    from streamify.upload import schema as upload_schema

    settings = Settings()
    engine = make_engine(settings.resolved_database_url)
    for name, schema in (
        ("metadata", metadata_schema),
        ("upload", upload_schema),
        ("transcode", transcode_schema),
        ("job queue", queue_schema),
    ):
        schema.upgrade(engine)
        print(f"migrated {name}")
    print(f"database {engine.url.render_as_string(hide_password=True)} is up to date")
    return 0


def cmd_protos(args: argparse.Namespace) -> int:
    from streamify.core import protogen

    return protogen.main(["--check"] if args.check else [])


def cmd_config(args: argparse.Namespace) -> int:
    from streamify.core.config import settings_table

    print(settings_table())
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    from streamify.cli.upload.cli import run_cli

    return run_cli(args)


UPLOAD_EPILOG = """\
The token is --token, else $STREAMIFY_TOKEN, else one minted like `streamify token` does
(the `users` key of STREAMIFY_SIGNING_KEYS, or the embedded dev keys in STREAMIFY_DATA_DIR,
default .streamify/) for
the user named by $USER (lowercased; "alice" if $USER is not a valid id).

An interrupted upload resumes when the same command is run again on the same, unchanged file:
only the parts storage does not hold yet are sent. Resume state lives in
$STREAMIFY_UPLOAD_STATE_DIR, else $XDG_CACHE_HOME/streamify/uploads (~/.cache/streamify/uploads).
STREAMIFY_UPLOAD_RATE_LIMIT (bytes/s) caps the sending rate.

exit codes:
  0    uploaded (with --wait: and the video is READY)
  1    the upload failed: storage or the network kept failing after retries
  2    bad input: missing or empty file, not a video, bad option
  3    the server refused a call (its status code and message are printed)
  4    with --wait: transcoding FAILED (the reason is printed)
  130  interrupted (Ctrl-C); run the same command again to resume
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamify", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run Streamify on one machine with embedded defaults")
    run.add_argument(
        "--port",
        type=int,
        help="gRPC port of the first Metadata replica, the second is +10 (default 50051)",
    )
    run.add_argument(
        "--transcode-port", type=int, help="gRPC port of the transcode orchestrator (default 50053)"
    )
    run.add_argument(
        "--gateway-port",
        type=int,
        help="Envoy gateway port (default 8080); its admin, media-authz and page servers take the next three",
    )
    run.add_argument("--workers", type=int, help="transcode workers to start (default 2)")
    run.add_argument("--redis", help="Redis URL for the metadata cache (default: in-process cache)")
    run.add_argument(
        "--upload-port",
        type=int,
        help="gRPC port of the first Upload replica, the second is +10 (default 50052)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        help="first Prometheus port, one per process (default 9464; 0 = off)",
    )
    run.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in .streamify/)")
    run.add_argument("--s3-endpoint", help="S3 endpoint to use instead of the embedded SeaweedFS")
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="serve one service (settings from STREAMIFY_* env)")
    serve.add_argument("service", choices=["metadata", "upload", "transcode"])
    serve.add_argument("--port", type=int)
    serve.add_argument("--metrics-port", type=int)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a transcode worker connected to an orchestrator")
    worker.add_argument(
        "--orchestrator",
        help="HOST:PORT of a transcode orchestrator (default STREAMIFY_ORCHESTRATOR_TARGET)",
    )
    worker.add_argument(
        "--slots", type=int, help="tasks run at once (default STREAMIFY_WORKER_SLOTS, 1)"
    )
    worker.set_defaults(func=cmd_worker)

    token = sub.add_parser("token", help="mint a bearer token (development and operations)")
    token_command.add_arguments(token)
    token.set_defaults(func=token_command.run)

    keys = sub.add_parser(
        "keys", help="print a new set of token keys (public keys for servers, one private each)"
    )
    keys_command.add_arguments(keys)
    keys.set_defaults(func=keys_command.run)

    migrate = sub.add_parser(
        "migrate",
        help="apply every component's database migrations (metadata, upload, transcode, job queue)",
    )
    migrate.set_defaults(func=cmd_migrate)

    k8s = sub.add_parser(
        "k8s-secrets",
        help="generate the Secrets of k8s/base into k8s/base/secrets/ (git-ignored; kept if present)",
    )
    k8s_secrets.add_arguments(k8s)
    k8s.set_defaults(func=k8s_secrets.run)

    config = sub.add_parser("config", help="print the table of STREAMIFY_* settings")
    config.set_defaults(func=cmd_config)

    protos = sub.add_parser(
        "protos", help="regenerate Python stubs from proto/ (--check: only compare)"
    )
    protos.add_argument("--check", action="store_true")
    protos.set_defaults(func=cmd_protos)

    upload = sub.add_parser(
        "upload",
        help="upload a video file (resumable)",
        epilog=UPLOAD_EPILOG,
        description="Upload FILE as a new video: straight to storage through pre-signed URLs,\n"
        "in parallel parts for large files, resuming where an interrupted run stopped.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    upload.add_argument("file", metavar="FILE", help="the video file")
    upload.add_argument("--title", help="title of the video (default: the file name)")
    upload.add_argument("--description", help="description of the video")
    upload.add_argument(
        "--visibility",
        choices=["private", "unlisted", "public"],
        default="private",
        help="who may watch it: only you (private, the default), anyone with the link "
        "(unlisted) or everyone, listed (public)",
    )
    upload.add_argument(
        "--wait",
        action="store_true",
        help="after uploading, follow transcoding until READY (print the playback URL) or FAILED",
    )
    upload.add_argument(
        "--parallel", type=int, default=4, metavar="N", help="parts sent at once (default 4)"
    )
    upload.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="the gateway or the Upload service (default $STREAMIFY_UPLOAD_TARGET or 127.0.0.1:8080, "
        "the gateway of `streamify run`)",
    )
    upload.add_argument(
        "--metadata-server",
        metavar="HOST:PORT",
        help="Metadata service, for --wait (default $STREAMIFY_METADATA_TARGET or --server)",
    )
    upload.add_argument("--token", help="bearer token (default: see below)")
    upload.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress or status lines, only results and errors",
    )
    upload.add_argument(
        "--json", action="store_true", help="print one JSON object with the result instead of text"
    )
    upload.set_defaults(func=cmd_upload)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
