"""The gateway's /media access check: a tiny HTTP server Envoy's ext_authz filter asks before
its cache (so a cached private object is never served without a grant).

Envoy sends ``GET|HEAD /authz/media/{path}``; the answer is

* 200 when ``path`` is ``videos/{id}/grant.{expires}.{signature}/...`` with a valid, unexpired
  grant for that video (``streamify.core.media_grants``; checked locally, no Metadata call: the
  grant was minted by whoever already checked the viewer's right to the video), or when the
  video is PUBLIC or UNLISTED (asked from the Metadata service's GetVideo with a service token;
  answers are cached for ``ttl`` seconds, "not found" for ``negative_ttl``, so a visibility
  change takes effect within seconds);
* 403 otherwise (also for unknown videos, malformed or expired grants, and paths outside
  ``videos/{id}/``: nothing says whether a private video exists);
* 503 when the Metadata service cannot answer (fail closed; Envoy itself turns an unreachable
  authz server into 503 too).

Run it: ``python -m streamify.gateway.authz --port 8181`` (settings from STREAMIFY_*: the
metadata target, the JWT secret for the service token and the grant key). ``GET /healthz`` = 200.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from streamify.core import media_grants as grants
from streamify.core import names

if TYPE_CHECKING:  # annotations only: this module imports the rest of streamify.core where used
    from streamify.core.config import Settings
    from streamify.core.video_events import VideoEventFollower

IDENTITY = "gateway"
log = logging.getLogger(__name__)

PATH_PREFIX = "/authz/media/"
READABLE = "public"  # lookup() answers: "public" (PUBLIC/UNLISTED), "private", None (no such video)
Lookup = Callable[[str], Awaitable[str | None]]


class LookupFailed(Exception):
    """The visibility could not be determined (Metadata unreachable, ...)."""


class MediaAuthorizer:
    def __init__(
        self, key: bytes, lookup: Lookup, *, ttl: float = 5.0, negative_ttl: float = 2.0
    ) -> None:
        self._key = key
        self._lookup = lookup
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._cache: dict[str, tuple[bool, float]] = {}
        # deleted videos (from the video event feed) and when they were, so a grant minted
        # before the deletion opens nothing; kept as long as such a grant can live
        self._deleted: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Future[bool]] = {}
        self.lookups = 0  # Metadata calls made (tests, metrics)

    def forget(self, video_id: str, keep_seconds: float) -> None:
        """The video was deleted: every request for it is refused from now on, grant or not."""
        now = time.monotonic()
        self._deleted = {v: t for v, t in self._deleted.items() if t > now}
        self._deleted[video_id] = now + keep_seconds
        self._cache.pop(video_id, None)

    def cached(self, video_id: str) -> bool | None:
        entry = self._cache.get(video_id)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        return None

    @staticmethod
    def media_key_of(target: str) -> grants.MediaKey | None:
        path = target.partition("?")[0]
        if not path.startswith(PATH_PREFIX):
            return None
        return grants.parse_media_key(unquote(path[len(PATH_PREFIX) :], errors="strict"))

    def quick(self, method: str, target: str) -> int | str:
        """The status when it is known without I/O, else the video id to look up."""
        if method not in ("GET", "HEAD"):
            return 403
        try:
            media = self.media_key_of(target)
        except UnicodeDecodeError:
            return 403
        if media is None or media.video_id in self._deleted:
            return 403
        if media.grant and grants.verify(self._key, media.video_id, media.grant):
            return 200
        readable = self.cached(media.video_id)
        if readable is not None:
            return 200 if readable else 403
        return media.video_id

    async def readable(self, video_id: str) -> bool:
        """Whether anyone may read the video (single flight per id, cached)."""
        cached = self.cached(video_id)
        if cached is not None:
            return cached
        fut = self._inflight.get(video_id)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[video_id] = fut
        try:
            self.lookups += 1
            answer = await self._lookup(video_id)
            readable = answer == READABLE
            ttl = self._ttl if answer is not None else self._negative_ttl
            self._cache[video_id] = (readable, time.monotonic() + ttl)
            if len(self._cache) > 100_000:
                self._cache.clear()
            fut.set_result(readable)
            return readable
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            self._inflight.pop(video_id, None)

    async def decide(self, method: str, target: str) -> int:
        quick = self.quick(method, target)
        if isinstance(quick, int):
            return quick
        try:
            return 200 if await self.readable(quick) else 403
        except LookupFailed:
            return 503


def metadata_lookup(
    target: str, call_metadata: Callable[[], tuple[tuple[str, str], ...]], timeout: float = 2.0
) -> Lookup:
    """A lookup that asks the Metadata service's GetVideo (as a service identity)."""
    import grpc

    from streamify.v1 import metadata_service_pb2 as api
    from streamify.v1 import metadata_service_pb2_grpc
    from streamify.v1.video_pb2 import Visibility

    channel: list[grpc.aio.Channel] = []
    public = {Visibility.VISIBILITY_PUBLIC, Visibility.VISIBILITY_UNLISTED}

    async def lookup(video_id: str) -> str | None:
        if not channel:
            channel.append(grpc.aio.insecure_channel(target, options=[("grpc.enable_retries", 1)]))
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel[0])
        try:
            video = await stub.GetVideo(
                api.GetVideoRequest(name=names.VIDEOS.name(video_id)),
                metadata=call_metadata(),
                timeout=timeout,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            log.warning(
                "media authz: GetVideo(%s) failed: %s %s", video_id, exc.code().name, exc.details()
            )
            raise LookupFailed(str(exc)) from exc
        return READABLE if video.visibility in public else "private"

    return lookup


# --------------------------------------------------------------------------- HTTP/1.1 server

_REASONS = {
    200: b"OK",
    403: b"Forbidden",
    404: b"Not Found",
    503: b"Service Unavailable",
    400: b"Bad Request",
}
_MAX_HEAD = 16 * 1024


def _response(status: int, head_only: bool = False) -> bytes:
    body = b"" if status == 200 else _REASONS.get(status, b"Error").lower() + b"\n"
    out = b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n" % (
        status,
        _REASONS.get(status, b"Error"),
        len(body),
    )
    return out if head_only else out + body


class _Connection(asyncio.Protocol):
    """Keep-alive HTTP/1.1, one request at a time (Envoy's pool never pipelines)."""

    def __init__(self, authorizer: MediaAuthorizer) -> None:
        self._authz = authorizer
        self._buf = b""
        self._busy = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._busy:
            self._process()

    def _process(self) -> None:
        while self._transport is not None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > _MAX_HEAD:
                    self._finish(_response(400), close=True)
                return
            head = self._buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, target, _ = lines[0].split(" ", 2)
            except ValueError:
                self._finish(_response(400), close=True)
                return
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    try:
                        length = int(value.strip() or 0)
                    except ValueError:
                        self._finish(_response(400), close=True)
                        return
            if len(self._buf) < end + 4 + length:
                return  # wait for the (ignored) body
            self._buf = self._buf[end + 4 + length :]
            head_only = method == "HEAD"
            if target == "/healthz":
                self._finish(_response(200, head_only))
                continue
            quick = self._authz.quick(method, target)
            if isinstance(quick, int):
                self._finish(_response(quick, head_only))
                continue
            self._busy = True
            asyncio.ensure_future(self._slow(method, target, head_only))
            return

    async def _slow(self, method: str, target: str, head_only: bool) -> None:
        try:
            status = await self._authz.decide(method, target)
        except Exception:
            log.exception("media authz failed")
            status = 503
        self._finish(_response(status, head_only))
        self._busy = False
        self._process()

    def _finish(self, payload: bytes, close: bool = False) -> None:
        if self._transport is not None:
            self._transport.write(payload)
            if close:
                self._transport.close()
                self._transport = None


class AuthzServer:
    def __init__(self, authorizer: MediaAuthorizer, host: str = "127.0.0.1", port: int = 0) -> None:
        self.authorizer = authorizer
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self.authorizer), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def __aenter__(self) -> AuthzServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def from_settings(settings: Settings, *, metadata_target: str | None = None) -> MediaAuthorizer:
    """An authorizer configured like every other Streamify process: the grant key and the
    service token (as the `gateway` identity, which may call GetVideo only) come from the
    settings; a missing one stops the start."""
    from streamify.core import token_keys
    from streamify.core.server import service_call_metadata
    from streamify.core.shared_secrets import media_grant_key

    target = metadata_target or settings.metadata_target
    token_keys.signing_key(settings, IDENTITY)  # fail at start, not at the first request
    lookup = metadata_lookup(target, lambda: service_call_metadata(settings, IDENTITY))

    return MediaAuthorizer(
        media_grant_key(settings), lookup, ttl=settings.media_authz_cache_seconds
    )


def deletion_follower(authorizer: MediaAuthorizer, settings: Settings) -> VideoEventFollower:
    """Follows the video event feed from its start (in memory: the retained deletions are few),
    so grants of deleted videos stop working everywhere within a poll."""
    from streamify.core.metadata_client import MetadataClient
    from streamify.core.video_events import MemoryCursor, VideoEventFollower
    from streamify.v1.metadata_service_pb2 import VideoEvent, VideoEventType

    keep = settings.media_grant.ttl_seconds + settings.media_authz_cache_seconds

    async def on_event(event: VideoEvent) -> None:
        if event.type == VideoEventType.VIDEO_EVENT_TYPE_DELETED:
            authorizer.forget(names.VIDEOS.id_in(event.video), keep)

    return VideoEventFollower(
        MetadataClient(settings, IDENTITY),
        MemoryCursor("media-authz"),
        on_event,
        poll_seconds=settings.video_event_poll_seconds,
    )


async def _main(host: str, port: int, metadata_target: str | None) -> None:
    from streamify.core.config import Settings

    settings = Settings()
    if metadata_target:
        settings = settings.model_copy(update={"metadata_target": metadata_target})
    with contextlib.suppress(Exception):
        from streamify.core.logs import configure_logging

        configure_logging(settings)
    authorizer = from_settings(settings)
    server = AuthzServer(authorizer, host, port)
    await server.start()
    log.info("media authz on %s:%s", host, server.port)
    follower = asyncio.create_task(deletion_follower(authorizer, settings).run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await server.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m streamify.gateway.authz", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8181)
    p.add_argument("--metadata-target", default=None, help="default: STREAMIFY_METADATA_TARGET")
    args = p.parse_args(argv)
    from streamify.core.entrypoint import run_or_refuse

    return run_or_refuse(
        "streamify media-authz",
        lambda: asyncio.run(_main(args.host, args.port, args.metadata_target)),
    )


if __name__ == "__main__":
    raise SystemExit(main())
