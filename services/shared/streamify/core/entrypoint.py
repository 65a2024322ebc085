"""The command line of one service process: `streamify-metadata`, `streamify-upload`,
`streamify-orchestrator` (each image's entry point) and `streamify serve NAME` share it.

Settings come from the STREAMIFY_* environment; the two flags override the ports so that one
ConfigMap can serve every Deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from streamify.core.config import Settings
from streamify.core.errors import ConfigurationError

RunService = Callable[[Settings], Coroutine[Any, Any, None]]


def add_port_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="gRPC port (default $STREAMIFY_GRPC_PORT)")
    parser.add_argument(
        "--metrics-port", type=int, help="Prometheus port (default $STREAMIFY_METRICS_PORT)"
    )


def settings_for(args: argparse.Namespace) -> Settings:
    overrides = {"grpc_port": args.port, "metrics_port": args.metrics_port}
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def serve_service(settings: Settings, run: RunService, prog: str = "streamify serve") -> int:
    from streamify.core.logs import configure_logging

    configure_logging(settings)
    return run_or_refuse(prog, lambda: asyncio.run(run(settings)))


def run_or_refuse(prog: str, start: Callable[[], object]) -> int:
    """Runs `start`; a configuration it refuses (a missing or weak secret, ...) is one line on
    stderr and exit status 2, not a traceback."""
    try:
        start()
    except ConfigurationError as exc:
        print(f"{prog}: refusing to start: {exc}", file=sys.stderr)
        return 2
    return 0


def serve_main(prog: str, description: str, run: RunService, argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_port_flags(parser)
    return serve_service(settings_for(parser.parse_args(argv)), run, prog)
