"""The local mesh `streamify run` starts, on embedded defaults:

SeaweedFS → Metadata ×2 → Upload ×2 → Transcode orchestrator → workers ×2 → media authz →
page server → Envoy gateway. Each process is waited for (gRPC health, HTTP, Envoy's /ready)
before the next starts; a process that dies is restarted; Ctrl-C stops everything by PID,
newest first."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from streamify.core.auth import mint_token
from streamify.core.config import Settings
from streamify.core.seaweed import SeaweedFS
from streamify.core.supervisor import Child, Probe, Supervisor
from streamify.core.token_keys import USERS, signing_key

if TYPE_CHECKING:
    from streamify.gateway.config import GatewayConfig

WEB_DIST = Path(__file__).resolve().parents[3] / "gateway" / "web" / "dist"


@dataclass(frozen=True)
class MeshPorts:
    metadata: tuple[int, ...] = (50051, 50061)
    upload: tuple[int, ...] = (50052, 50062)
    transcode: int = 50053
    gateway: int = 8080
    gateway_admin: int = 8081
    authz: int = 8082
    web: int = 8083
    metrics: int = 9464  # first metrics port, each process takes the next one; 0 = no metrics
    workers: int = 2

    @staticmethod
    def around_gateway(port: int) -> dict[str, int]:
        return {"gateway": port, "gateway_admin": port + 1, "authz": port + 2, "web": port + 3}

    def metrics_of(self, index: int) -> int:
        return self.metrics + index if self.metrics else 0


def grpc_serving(target: str, service: str) -> Probe:
    async def probe() -> bool:
        async with grpc.aio.insecure_channel(target) as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=1
                )
            except grpc.aio.AioRpcError:
                return False
            serving: bool = reply.status == health_pb2.HealthCheckResponse.SERVING
            return serving

    return probe


def http_answers(url: str) -> Probe:
    async def probe() -> bool:
        def get() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=1) as reply:
                    answered: bool = reply.status < 500
                    return answered
            except OSError:
                return False

        return await asyncio.to_thread(get)

    return probe


def child_env(settings: Settings, storage: dict[str, object], ports: MeshPorts) -> dict[str, str]:
    """What every child inherits: the settings that were given, made explicit."""
    host = settings.grpc_host
    env = {
        "STREAMIFY_EMBEDDED": "true" if settings.embedded else "false",
        "STREAMIFY_DATA_DIR": str(Path(settings.data_dir).resolve()),
        "STREAMIFY_DATABASE_URL": settings.resolved_database_url,
        # every replica: the internal channels balance over them and skip one that is down
        "STREAMIFY_METADATA_TARGET": "ipv4:" + ",".join(f"{host}:{p}" for p in ports.metadata),
        "STREAMIFY_ORCHESTRATOR_TARGET": f"{host}:{ports.transcode}",
        "STREAMIFY_CDN_BASE_URL": f"http://{host}:{ports.gateway}/media",
        "STREAMIFY_REFLECTION_ALL_SERVICES": "true",
    }
    if settings.redis_url:
        env["STREAMIFY_REDIS_URL"] = settings.redis_url
    elif len(ports.metadata) > 1 and "STREAMIFY_CACHE_TTL_SECONDS" not in os.environ:
        # Each replica then has its own in-process cache, which a write through the other
        # replica cannot invalidate: keep entries short-lived (give --redis for a shared cache).
        env["STREAMIFY_CACHE_TTL_SECONDS"] = "1"
    for key, value in storage.items():
        env[f"STREAMIFY_{key.upper()}"] = str(value)
    return env


def python_child(name: str, args: list[str], env: dict[str, str], ready: Probe | None) -> Child:
    return Child(name=name, argv=[sys.executable, "-m", *args], env=env, ready=ready)


def service(
    name: str, index: int, port: int, metrics_port: int, env: dict[str, str], host: str
) -> Child:
    """`streamify serve NAME` on `port`; `metrics_port` 0 turns its /metrics off."""
    return python_child(
        f"{name}-{index}",
        ["streamify.cli", "serve", name, "--port", str(port), "--metrics-port", str(metrics_port)],
        env,
        grpc_serving(f"{host}:{port}", f"streamify.v1.{name.capitalize()}Service"),
    )


def gateway_config(
    settings: Settings, ports: MeshPorts, storage: dict[str, object], with_web: bool
) -> GatewayConfig:
    from streamify.gateway.config import Endpoint, GatewayConfig, MediaConfig

    host = settings.grpc_host
    return GatewayConfig.local(
        {
            "metadata": [f"{host}:{p}" for p in ports.metadata],
            "upload": [f"{host}:{p}" for p in ports.upload],
            "transcode": [f"{host}:{ports.transcode}"],
        },
        listen_port=ports.gateway,
        admin_port=ports.gateway_admin,
        media=MediaConfig(
            origin_url=str(storage.get("s3_endpoint_url") or settings.s3.endpoint_url),
            bucket=settings.media_bucket,
            region=settings.s3.region,
            access_key_id=str(storage["s3_access_key_id"])
            if "s3_access_key_id" in storage
            else None,
            secret_access_key=str(storage["s3_secret_access_key"])
            if "s3_secret_access_key" in storage
            else None,
            authz=Endpoint(host, ports.authz),
        ),
        web=Endpoint(host, ports.web) if with_web else None,
    )


async def start_mesh(
    supervisor: Supervisor, settings: Settings, ports: MeshPorts, storage: dict[str, object]
) -> None:
    from streamify.gateway.config import write
    from streamify.gateway.envoy import Envoy

    data_dir = Path(settings.data_dir).resolve()
    host = settings.grpc_host
    env = child_env(settings, storage, ports)
    metrics = iter(range(100))
    for name, replica_ports in (
        ("metadata", ports.metadata),
        ("upload", ports.upload),
        ("transcode", (ports.transcode,)),
    ):
        for index, port in enumerate(replica_ports):
            await supervisor.start(
                service(name, index, port, ports.metrics_of(next(metrics)), env, host)
            )
    for index in range(ports.workers):
        await supervisor.start(
            python_child(
                f"worker-{index}",
                [
                    "streamify.cli",
                    "worker",
                    "--orchestrator",
                    f"{host}:{ports.transcode}",
                    "--slots",
                    "1",
                ],
                env,
                None,
            )
        )
    await supervisor.start(
        python_child(
            "media-authz",
            ["streamify.gateway.authz", "--host", host, "--port", str(ports.authz)],
            env,
            http_answers(f"http://{host}:{ports.authz}/healthz"),
        )
    )
    with_web = (WEB_DIST / "index.html").exists()
    if with_web:
        await supervisor.start(
            python_child(
                "web",
                ["http.server", str(ports.web), "--bind", host, "--directory", str(WEB_DIST)],
                env,
                http_answers(f"http://{host}:{ports.web}/"),
            )
        )
    config_path = write(gateway_config(settings, ports, storage, with_web), data_dir / "envoy.yaml")
    envoy = Envoy(config_path, admin_port=ports.gateway_admin, base_id=ports.gateway_admin)

    async def envoy_ready() -> bool:
        return await asyncio.to_thread(envoy.ready)

    await supervisor.start(Child(name="envoy", argv=envoy.command(), env=env, ready=envoy_ready))


async def run_mesh(settings: Settings, ports: MeshPorts = MeshPorts()) -> None:
    data_dir = Path(settings.data_dir).resolve()
    seaweed = None
    if settings.s3.endpoint_url is None:
        seaweed = SeaweedFS.from_settings(settings)
        seaweed.start()  # on this (main) thread, which outlives it; nothing else runs yet
        storage = seaweed.settings_overrides()
    else:
        storage = {}
    supervisor = Supervisor(log_dir=str(data_dir / "logs"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await start_mesh(supervisor, settings, ports, storage)
        print(banner(settings, ports, storage, data_dir), flush=True)
        await supervisor.watch(stop)
    finally:
        print("\nstopping Streamify...", flush=True)
        await supervisor.stop_all()
        if seaweed is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(seaweed.stop)


def banner(settings: Settings, ports: MeshPorts, storage: dict[str, object], data_dir: Path) -> str:
    token = mint_token(
        signing_key(settings, USERS), "alice", ttl_seconds=24 * 3600, issuer=settings.jwt_issuer
    )
    host = settings.grpc_host
    gateway = f"{host}:{ports.gateway}"
    s3 = storage.get("s3_endpoint_url") or settings.s3.endpoint_url or "AWS S3"
    page = (
        f"http://{gateway}/#token={token}"
        if (WEB_DIST / "index.html").exists()
        else "(not built: ./streamify run builds it)"
    )
    return (
        "\nStreamify is running (embedded mode)\n"
        f"  Web page          {page}\n"
        f"  gRPC + grpc-web   {gateway}   (grpcurl -plaintext {gateway} list)\n"
        f"  Media CDN         http://{gateway}/media/\n"
        f"  Services          metadata {', '.join(map(str, ports.metadata))} · upload {', '.join(map(str, ports.upload))}"
        f" · transcode {ports.transcode} · {ports.workers} workers\n"
        f"  Object storage    {s3}   (buckets {settings.uploads_bucket}, {settings.media_bucket})\n"
        f"  Database          {settings.resolved_database_url}\n"
        f"  Cache             {settings.redis_url or 'in-process'}\n"
        + (
            f"  Metrics           http://{host}:{ports.metrics}/metrics and the next ports, one per service process\n"
            if ports.metrics
            else ""
        )
        + f"  Envoy admin       http://{host}:{ports.gateway_admin}/\n"
        f"  Logs              {data_dir / 'logs'}\n"
        f"  Dev token (alice) export TOKEN={token}\n"
        f"  Try               grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{}}' {gateway} streamify.v1.MetadataService/ListVideos\n"
        f'  Upload a file     ./streamify upload FILE --title "My video" --wait\n'
        "Press Ctrl-C to stop.\n"
    )
