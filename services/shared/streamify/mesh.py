"""The local mesh `streamify run` starts: embedded SeaweedFS, then each service as its own
process on the documented ports, each one waited for until its gRPC health check says SERVING.
Ctrl-C (or SIGTERM) stops everything, newest first."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from streamify.core.auth import mint_token, signing_key
from streamify.core.config import Settings
from streamify.core.seaweed import SeaweedFS
from streamify.core.supervisor import Child, Supervisor


@dataclass(frozen=True)
class MeshPorts:
    metadata: int = 50051
    upload: int = 50052
    metrics: int = 9464  # first metrics port, each process takes the next one; 0 = no metrics

    def metrics_of(self, index: int) -> int:
        return self.metrics + index if self.metrics else 0


def grpc_serving(target: str, service: str):
    async def probe() -> bool:
        async with grpc.aio.insecure_channel(target) as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=1)
            except grpc.aio.AioRpcError:
                return False
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    return probe


def child_env(settings: Settings, storage: dict[str, object]) -> dict[str, str]:
    """What every child inherits: the settings that were given, made explicit."""
    env = {
        "STREAMIFY_EMBEDDED": "true" if settings.embedded else "false",
        "STREAMIFY_DATA_DIR": str(Path(settings.data_dir).resolve()),
        "STREAMIFY_DATABASE_URL": settings.resolved_database_url,
    }
    if settings.redis_url:
        env["STREAMIFY_REDIS_URL"] = settings.redis_url
    for key, value in storage.items():
        env[f"STREAMIFY_{key.upper()}"] = str(value)
    return env


def service(name: str, port: int, metrics_port: int, env: dict[str, str], host: str) -> Child:
    """`streamify serve NAME` on `port`; `metrics_port` 0 turns its /metrics off."""
    return Child(
        name=name,
        argv=[sys.executable, "-m", "streamify.cli", "serve", name, "--port", str(port),
              "--metrics-port", str(metrics_port)],
        env=env,
        ready=grpc_serving(f"{host}:{port}", f"streamify.v1.{name.capitalize()}Service"),
    )


async def run_mesh(settings: Settings, ports: MeshPorts = MeshPorts()) -> None:
    data_dir = Path(settings.data_dir).resolve()
    seaweed = None
    if settings.s3_endpoint_url is None:
        seaweed = SeaweedFS.from_settings(settings)
        await asyncio.to_thread(seaweed.start)
        storage = seaweed.settings_overrides()
    else:
        storage = {}
    host = settings.grpc_host
    env = child_env(settings, storage) | {"STREAMIFY_METADATA_TARGET": f"{host}:{ports.metadata}"}
    supervisor = Supervisor(log_dir=str(data_dir / "logs"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await supervisor.start(service("metadata", ports.metadata, ports.metrics_of(0), env, host))
        await supervisor.start(service("upload", ports.upload, ports.metrics_of(1), env, host))
        print(banner(settings, ports, storage, data_dir), flush=True)
        await supervisor.watch(stop)
    finally:
        print("\nstopping Streamify...", flush=True)
        await supervisor.stop_all()
        if seaweed is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(seaweed.stop)


def banner(settings: Settings, ports: MeshPorts, storage: dict[str, object], data_dir: Path) -> str:
    token = mint_token(signing_key(settings), "alice", ttl_seconds=24 * 3600, issuer=settings.jwt_issuer)
    host = settings.grpc_host
    s3 = storage.get("s3_endpoint_url") or settings.s3_endpoint_url or "AWS S3"
    return (
        "\nStreamify is running (embedded mode)\n"
        f"  Metadata gRPC     {host}:{ports.metadata}   (reflection: grpcurl -plaintext {host}:{ports.metadata} list)\n"
        f"  Upload gRPC       {host}:{ports.upload}\n"
        f"  Object storage    {s3}   (buckets {settings.uploads_bucket}, {settings.media_bucket})\n"
        f"  Database          {settings.resolved_database_url}\n"
        f"  Cache             {settings.redis_url or 'in-process'}\n"
        + (f"  Metrics           http://{host}:{ports.metrics}/metrics (metadata), :{ports.metrics + 1} (upload)\n"
           if ports.metrics else "")
        + f"  Logs              {data_dir / 'logs'}\n"
        f"  Dev token (alice) export TOKEN={token}\n"
        f"  Try               grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" "
        f"-d '{{\"video\": {{\"title\": \"Hello\"}}}}' {host}:{ports.metadata} streamify.v1.MetadataService/CreateVideo\n"
        f"  Upload a file     ./streamify upload FILE --title \"My video\"\n"
        "Press Ctrl-C to stop.\n"
    )
