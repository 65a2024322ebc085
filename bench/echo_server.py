"""A bare grpcio server of the same shape as the Metadata service's GetVideo, for benchmarks.

Same service and method (`streamify.v1.MetadataService/GetVideo`), same request type, and a
`Video` response built once (from `--response-file`, the serialized Video the real service
returned, so both responses have the same size). No auth, validation, cache, database, logging
or metrics: the best a Python gRPC server can do on this machine.

    python bench/echo_server.py --flavour aio --port 0 --response-file video.bin

Prints `READY <port>` on stdout once serving; stops on SIGTERM/SIGINT. The port is owned
exclusively (`grpc.so_reuseport` off) so a stale server cannot silently share it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from pathlib import Path

import grpc

from streamify.v1 import metadata_service_pb2_grpc
from streamify.v1.video_pb2 import Video

OPTIONS = [("grpc.so_reuseport", 0)]


def load_video(path: str | None) -> Video:
    if path:
        return Video.FromString(Path(path).read_bytes())
    return Video(name="videos/echo", owner="users/alice", title="echo")


class AioEcho(metadata_service_pb2_grpc.MetadataServiceServicer):
    def __init__(self, video: Video) -> None:
        self._video = video

    async def GetVideo(self, request, context):
        return self._video


class SyncEcho(metadata_service_pb2_grpc.MetadataServiceServicer):
    def __init__(self, video: Video) -> None:
        self._video = video

    def GetVideo(self, request, context):
        return self._video


async def serve_aio(host: str, port: int, video: Video) -> None:
    server = grpc.aio.server(options=OPTIONS)
    metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(AioEcho(video), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"READY {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


def serve_sync(host: str, port: int, video: Video, workers: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    server = grpc.server(ThreadPoolExecutor(max_workers=workers), options=OPTIONS)
    metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(SyncEcho(video), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    print(f"READY {bound}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(0.5).wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--flavour", choices=["aio", "sync"], default="aio")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--response-file", help="serialized streamify.v1.Video to answer with")
    p.add_argument("--workers", type=int, default=16, help="thread pool size (sync flavour)")
    args = p.parse_args(argv)
    video = load_video(args.response_file)
    if args.flavour == "aio":
        asyncio.run(serve_aio(args.host, args.port, video))
    else:
        serve_sync(args.host, args.port, video, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
