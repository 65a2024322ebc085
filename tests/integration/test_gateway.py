"""The Envoy gateway in front of two real Metadata replicas (same SQLite database): native gRPC
(grpcurl, stubs), grpc-web with plain `requests` framing, CORS, fail-over without a failed call,
and a WatchVideo stream that outlives every timeout Envoy has."""

from __future__ import annotations

import asyncio
import itertools
import struct
from dataclasses import dataclass, field

import grpc
import pytest
import requests
from google.protobuf.field_mask_pb2 import FieldMask

from streamify.core.binaries import installed_binary
from streamify.core.server import serve
from streamify.gateway.config import GatewayConfig, write
from streamify.gateway.envoy import Envoy
from streamify.metadata import app
from streamify.v1 import metadata_service_pb2 as api
from streamify.v1 import metadata_service_pb2_grpc
from streamify.v1.video_pb2 import Video, Visibility
from tests.support.metadata import bearer, service_settings
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

ALICE = bearer("alice")
_base_ids = itertools.count(101)


@dataclass
class Replica:
    """One Metadata process-equivalent (its own server, cache and port) in the test's loop."""

    settings: object
    port: int
    task: asyncio.Task | None = None
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        servicer, cache = app.build(self.settings)
        ready = asyncio.get_running_loop().create_future()
        self.stop_event = asyncio.Event()

        async def run() -> None:
            try:
                await serve(
                    self.settings,
                    [app.registration(servicer)],
                    on_ready=ready.set_result,
                    stop_event=self.stop_event,
                    reflect_all_v1=True,
                )
            finally:
                await cache.close()

        self.task = asyncio.create_task(run())
        done, _ = await asyncio.wait({self.task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if self.task in done:
            self.task.result()

    async def stop(self) -> None:
        if self.task is not None:
            self.stop_event.set()
            await self.task
            self.task = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Gateway:
    envoy: Envoy
    port: int
    replicas: list[Replica]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rq_total(self, replica: Replica) -> int:
        return int(self.envoy.host_stats("metadata").get(replica.address, {}).get("rq_total", 0))

    def healthy(self, replica: Replica) -> bool:
        return (
            self.envoy.host_stats("metadata").get(replica.address, {}).get("health_flags")
            == "healthy"
        )


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gateway")
    replicas = []
    for grace in (5.0, 0.0):  # the second one is the one we kill: no grace for in-flight calls
        port = free_port()
        settings = service_settings(
            data_dir=tmp,
            grpc_port=port,
            shutdown_grace_seconds=grace,
            cdn_base_url="http://cdn.test/media",
        )
        replicas.append(Replica(settings, port))
    for r in replicas:
        await r.start()
    port, admin = free_port(), free_port()
    cfg = GatewayConfig.local(
        {"metadata": [r.address for r in replicas]},
        listen_port=port,
        admin_port=admin,
        # shorter than Envoy's defaults (15 s route timeout, 5 min stream idle timeout), so the
        # WatchVideo test proves its route has neither
        unary_timeout=3.0,
        stream_idle_timeout=3.0,
        health_check_interval=0.5,
    )
    envoy = Envoy(write(cfg, tmp / "envoy.yaml"), admin, base_id=next(_base_ids))
    await asyncio.to_thread(envoy.start)
    try:
        yield Gateway(envoy, port, replicas)
    finally:
        await asyncio.to_thread(envoy.stop)
        for r in replicas:
            await r.stop()


@pytest.fixture
async def stub(gateway):
    async with grpc.aio.insecure_channel(gateway.target) as channel:
        yield metadata_service_pb2_grpc.MetadataServiceStub(channel)


async def _create(stub, title="Through the gateway", **fields) -> Video:
    return await stub.CreateVideo(
        api.CreateVideoRequest(video=Video(title=title, **fields)), metadata=ALICE
    )


def _grpcurl() -> str:
    return installed_binary("grpcurl") or "grpcurl"


async def _run(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode, out.decode()


async def test_grpcurl_lists_every_service_and_calls_through_the_gateway(gateway, stub):
    rc, out = await _run(_grpcurl(), "-plaintext", gateway.target, "list")
    assert rc == 0, out
    assert {
        "streamify.v1.MetadataService",
        "streamify.v1.UploadService",
        "streamify.v1.TranscodeService",
        "grpc.health.v1.Health",
    } <= set(out.split())
    video = await _create(stub)
    token = ALICE[0][1]
    rc, out = await _run(
        _grpcurl(),
        "-plaintext",
        "-H",
        f"authorization: {token}",
        "-d",
        f'{{"name": "{video.name}"}}',
        gateway.target,
        "streamify.v1.MetadataService/GetVideo",
    )
    assert rc == 0, out
    assert '"title": "Through the gateway"' in out
    rc, out = await _run(_grpcurl(), "-plaintext", gateway.target, "grpc.health.v1.Health/Check")
    assert rc == 0 and "SERVING" in out, out


# --- grpc-web with plain requests (recipes §8) -----------------------------------------------


def _grpc_web_call(url: str, method: str, message: bytes, token: str, origin: str | None = None):
    headers = {
        "content-type": "application/grpc-web+proto",
        "x-grpc-web": "1",
        "x-user-agent": "grpc-web-python-test",
        "authorization": token,
    }
    if origin:
        headers["origin"] = origin
    body = b"\x00" + struct.pack(">I", len(message)) + message
    return requests.post(f"{url}/streamify.v1.MetadataService/{method}", data=body, headers=headers)


def _frames(payload: bytes) -> tuple[list[bytes], dict[str, str]]:
    messages, trailers, i = [], {}, 0
    while i < len(payload):
        flag, length = payload[i], struct.unpack(">I", payload[i + 1 : i + 5])[0]
        chunk = payload[i + 5 : i + 5 + length]
        i += 5 + length
        if flag & 0x80:
            for line in chunk.decode().split("\r\n"):
                if line:
                    k, _, v = line.partition(":")
                    trailers[k.strip().lower()] = v.strip()
        else:
            messages.append(chunk)
    return messages, trailers


async def test_grpc_web_call_returns_the_video_and_errors_arrive_trailers_only(gateway, stub):
    video = await _create(stub, title="grpc-web")
    token = ALICE[0][1]
    req = api.GetVideoRequest(name=video.name).SerializeToString()
    r = await asyncio.to_thread(
        _grpc_web_call, gateway.url, "GetVideo", req, token, "http://player.test"
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://player.test"
    assert "grpc-status" in r.headers["access-control-expose-headers"]
    messages, trailers = _frames(r.content)
    assert trailers["grpc-status"] == "0"
    assert Video.FromString(messages[0]).title == "grpc-web"

    missing = api.GetVideoRequest(name="videos/doesnotexist").SerializeToString()
    r = await asyncio.to_thread(_grpc_web_call, gateway.url, "GetVideo", missing, token)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["grpc-status"] == str(grpc.StatusCode.NOT_FOUND.value[0])
    assert "videos/doesnotexist" in requests.utils.unquote(r.headers["grpc-message"])


async def test_cors_preflight_is_answered_by_the_gateway(gateway):
    r = await asyncio.to_thread(
        requests.options,
        f"{gateway.url}/streamify.v1.MetadataService/GetVideo",
        headers={
            "origin": "http://player.test",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-grpc-web,authorization,x-request-id",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://player.test"
    allowed = r.headers["access-control-allow-headers"]
    for h in (
        "authorization",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "content-type",
        "x-request-id",
    ):
        assert h in allowed


async def test_watch_video_outlives_every_gateway_timeout(gateway, stub):
    video = await _create(stub, title="before")
    stream = stub.WatchVideo(api.WatchVideoRequest(name=video.name), metadata=ALICE)
    first = await stream.read()
    assert first.video.title == "before"
    # longer than Envoy's default route timeout (15 s) and than this gateway's configured unary
    # route timeout and stream idle timeout (3 s each); nothing is sent meanwhile
    await asyncio.sleep(16)
    await stub.UpdateVideo(
        api.UpdateVideoRequest(
            video=Video(name=video.name, title="after"), update_mask=FieldMask(paths=["title"])
        ),
        metadata=ALICE,
    )
    second = await stream.read()
    assert second.video.title == "after"
    stream.cancel()


async def test_killing_a_replica_fails_no_call_and_it_takes_traffic_when_back(gateway, stub):
    video = await _create(stub, title="fail-over", visibility=Visibility.VISIBILITY_PUBLIC)
    keep, victim = gateway.replicas
    request = api.GetVideoRequest(name=video.name)
    calls, failures, stop = [0], [], asyncio.Event()

    async def client() -> None:
        while not stop.is_set():
            try:
                got = await stub.GetVideo(request, metadata=ALICE)
                assert got.title == "fail-over"
            except grpc.aio.AioRpcError as exc:
                failures.append(f"{exc.code().name}: {exc.details()}")
            calls[0] += 1

    clients = [asyncio.create_task(client()) for _ in range(4)]
    try:
        while gateway.rq_total(victim) < 50:  # both replicas serve the loop
            await asyncio.sleep(0.05)
        await victim.stop()  # in-flight calls are cancelled (no grace), the port closes
        before = calls[0]
        while calls[0] < before + 500:
            await asyncio.sleep(0.05)
        await victim.start()  # same port
        while not await asyncio.to_thread(gateway.healthy, victim):
            await asyncio.sleep(0.1)
        served_before = gateway.rq_total(victim)
        while gateway.rq_total(victim) < served_before + 50:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*clients)
    stats = gateway.envoy.stats("cluster.metadata.")
    print(
        f"{calls[0]} calls, retries {stats.get('cluster.metadata.upstream_rq_retry')}, "
        f"ejections {stats.get('cluster.metadata.outlier_detection.ejections_enforced_total')}, "
        f"hc failures {stats.get('cluster.metadata.health_check.failure')}"
    )
    assert failures == []
    assert gateway.rq_total(keep) > 0
