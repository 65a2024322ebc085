"""The shared server bootstrap (streamify.core.server) over real gRPC channels.

A tiny MetadataService implementation stands in for a real service: the bootstrap must not care
what the service does.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import grpc.aio
import jwt
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from streamify.core import errors, token_keys
from streamify.core.auth import current_principal, mint_token
from streamify.core.config import Settings
from streamify.core.errors import details_of
from streamify.core.server import ServiceRegistration, client_channel, serve, service_call_metadata
from streamify.core.token_keys import USERS
from streamify.v1 import metadata_service_pb2 as api
from streamify.v1 import metadata_service_pb2_grpc
from streamify.v1.video_pb2 import Video
from tests.support import keys
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

SERVICE = "streamify.v1.MetadataService"


def bearer(subject: str = "alice", kind: str = "user") -> tuple[tuple[str, str], ...]:
    return keys.bearer(subject, kind)


class TinyMetadata(metadata_service_pb2_grpc.MetadataServiceServicer):
    def __init__(self) -> None:
        self.slow_started = asyncio.Event()

    async def GetVideo(self, request: api.GetVideoRequest, context) -> Video:
        if request.name == "videos/boom":
            raise RuntimeError("secret internals: /srv/app.py line 42")
        if request.name == "videos/missing":
            raise errors.not_found(request.name)
        if request.name == "videos/slow":
            self.slow_started.set()
            await asyncio.sleep(1.0)
        return Video(name=request.name, owner=current_principal().user_name, title="tiny")

    async def WatchVideo(
        self, request: api.WatchVideoRequest, context
    ) -> AsyncIterator[api.WatchVideoResponse]:
        if request.name == "videos/boom":
            yield api.WatchVideoResponse(video=Video(name=request.name))
            raise RuntimeError("mid-stream failure")
        for i in range(3):
            yield api.WatchVideoResponse(video=Video(name=request.name, title=f"v{i}"))


@dataclass
class Running:
    port: int
    metrics_port: int
    servicer: TinyMetadata
    stop: asyncio.Event
    task: asyncio.Task[None]

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")


async def start(tmp_path, *, metrics_port: int = 0, grace: float = 5.0) -> Running:
    settings = Settings(
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=metrics_port,
        **keys.SECRET_SETTINGS,
        embedded=False,
        data_dir=tmp_path,
        shutdown_grace_seconds=grace,
        log_format="text",
    )
    servicer = TinyMetadata()
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    registration = ServiceRegistration(
        name=SERVICE,
        add_to_server=metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server,
        servicer=servicer,
        public_methods=frozenset({"WatchVideo"}),
    )
    task = asyncio.create_task(
        serve(settings, [registration], on_ready=ready.set_result, stop_event=stop)
    )
    port = await asyncio.wait_for(ready, 10)
    return Running(port, metrics_port, servicer, stop, task)


@pytest_asyncio.fixture(scope="module")
async def server(tmp_path_factory) -> AsyncIterator[Running]:
    running = await start(tmp_path_factory.mktemp("core"), metrics_port=free_port())
    yield running
    running.stop.set()
    await asyncio.wait_for(running.task, 15)


@pytest_asyncio.fixture
async def stub(server: Running) -> AsyncIterator[metadata_service_pb2_grpc.MetadataServiceStub]:
    async with server.channel() as channel:
        yield metadata_service_pb2_grpc.MetadataServiceStub(channel)


async def rpc_error(awaitable) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await awaitable
    return exc.value


async def test_health_serving_for_server_and_service(server: Running):
    async with server.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_service(server: Running):
    async with server.channel() as channel:
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = reflect.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        reply = await call.read()
        await call.done_writing()
        names = {s.name for s in reply.list_services_response.service}
        assert {SERVICE, "grpc.health.v1.Health"} <= names


async def test_authenticated_call_sees_the_principal(stub):
    video = await stub.GetVideo(api.GetVideoRequest(name="videos/abc"), metadata=bearer("alice"))
    assert video.owner == "users/alice" and video.title == "tiny"


async def test_service_to_service_call_uses_a_service_token(server: Running):
    settings = Settings(**keys.SECRET_SETTINGS)
    md = service_call_metadata(settings, "gateway")
    assert md is service_call_metadata(settings, "gateway")  # cached until near expiry
    async with client_channel(f"127.0.0.1:{server.port}") as channel:
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        video = await stub.GetVideo(api.GetVideoRequest(name="videos/abc"), metadata=md)
    assert video.owner == "services/gateway"


async def test_no_token_is_unauthenticated(stub):
    error = await rpc_error(stub.GetVideo(api.GetVideoRequest(name="videos/abc")))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization" in error.details()
    assert details_of(error)[0].reason == "TOKEN_MISSING"


async def test_expired_token_is_unauthenticated_with_a_clear_message(stub):
    now = int(time.time())
    token = jwt.encode(
        {"sub": "alice", "kind": "user", "iss": "streamify", "iat": now - 7200, "exp": now - 3600},
        keys.TEST_KEYS[USERS].private,
        algorithm="EdDSA",
        headers={"kid": USERS},
    )
    error = await rpc_error(
        stub.GetVideo(
            api.GetVideoRequest(name="videos/abc"), metadata=(("authorization", f"Bearer {token}"),)
        )
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "token expired at" in error.details() and "streamify token" in error.details()
    assert details_of(error)[0].reason == "TOKEN_EXPIRED"


async def test_token_signed_with_another_key_is_refused(stub):
    token = mint_token(token_keys.generate((USERS,))[USERS], "alice")
    error = await rpc_error(
        stub.GetVideo(
            api.GetVideoRequest(name="videos/abc"), metadata=(("authorization", f"Bearer {token}"),)
        )
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details_of(error)[0].reason == "TOKEN_INVALID"


async def test_invalid_request_names_the_field(stub):
    error = await rpc_error(stub.GetVideo(api.GetVideoRequest(name="bad"), metadata=bearer()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, bad_request = details_of(error)
    assert bad_request is not None
    assert [v.field for v in bad_request.field_violations] == ["name"]
    assert "name" in error.details()


async def test_api_error_becomes_a_rich_status(stub):
    error = await rpc_error(
        stub.GetVideo(api.GetVideoRequest(name="videos/missing"), metadata=bearer())
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "video 'videos/missing' not found"
    assert details_of(error)[0].reason == "RESOURCE_NOT_FOUND"


async def test_crash_is_internal_with_request_id_and_no_internals(stub, caplog):
    call = stub.GetVideo(
        api.GetVideoRequest(name="videos/boom"),
        metadata=(*bearer(), ("x-request-id", "req-boom-1")),
    )
    error = await rpc_error(call)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error (request id req-boom-1)"
    assert "secret" not in error.details() and "Traceback" not in error.details()
    assert ("x-request-id", "req-boom-1") in tuple(error.trailing_metadata())
    logged = [r for r in caplog.records if "req-boom-1" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback stays in the server log
    assert "secret internals" in str(logged[0].exc_info[1])


async def test_request_id_is_echoed_or_generated(stub):
    call = stub.GetVideo(
        api.GetVideoRequest(name="videos/abc"), metadata=(*bearer(), ("x-request-id", "req-123"))
    )
    await call
    assert ("x-request-id", "req-123") in tuple(await call.trailing_metadata())
    call = stub.GetVideo(api.GetVideoRequest(name="videos/abc"), metadata=bearer())
    await call
    generated = dict(tuple(await call.trailing_metadata()))["x-request-id"]
    assert len(generated) >= 16


async def test_public_streaming_method_needs_no_token_and_maps_errors(stub):
    replies = [
        r.video.title async for r in stub.WatchVideo(api.WatchVideoRequest(name="videos/abc"))
    ]
    assert replies == ["v0", "v1", "v2"]
    call = stub.WatchVideo(
        api.WatchVideoRequest(name="videos/boom"), metadata=(("x-request-id", "req-stream"),)
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        async for _ in call:
            pass
    assert exc.value.code() == grpc.StatusCode.INTERNAL
    assert exc.value.details() == "internal error (request id req-stream)"


async def test_unimplemented_method_is_unimplemented(stub):
    error = await rpc_error(stub.ListVideos(api.ListVideosRequest(), metadata=bearer()))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_metrics_endpoint_counts_requests(server: Running, stub):
    await stub.GetVideo(api.GetVideoRequest(name="videos/metrics"), metadata=bearer())
    await rpc_error(stub.GetVideo(api.GetVideoRequest(name="videos/abc")))

    def scrape() -> str:
        url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    text = await asyncio.to_thread(scrape)
    labels = f'method="GetVideo",service="{SERVICE}"'
    assert f'streamify_rpc_requests_total{{code="OK",{labels}}}' in text
    assert f'streamify_rpc_requests_total{{code="UNAUTHENTICATED",{labels}}}' in text
    assert f"streamify_rpc_duration_seconds_count{{{labels}}}" in text


async def test_graceful_shutdown_finishes_in_flight_calls(tmp_path):
    running = await start(tmp_path, grace=10.0)
    async with running.channel() as channel:
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING

        slow = asyncio.ensure_future(
            stub.GetVideo(api.GetVideoRequest(name="videos/slow"), metadata=bearer())
        )
        await asyncio.wait_for(running.servicer.slow_started.wait(), 5)
        running.stop.set()

        update = await asyncio.wait_for(watch.read(), 5)
        assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()

        video = await asyncio.wait_for(slow, 10)
        assert video.name == "videos/slow"
        await asyncio.wait_for(running.task, 10)
