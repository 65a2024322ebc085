"""Streamify load test: users that behave like real clients, through the Envoy gateway.

Runs inside loadtest/.venv (locust 2.47 + grpcio + protobuf only; never sonora). Start it with
`loadtest/run.sh` (docs/performance.md, "Load tests (locust)"), which seeds READY public videos,
mints the tokens and hands everything over in environment variables:

  STREAMIFY_LT_GATEWAY       host:port of Envoy (native gRPC + /media)
  STREAMIFY_LT_SEED          JSON file written by run.py: {"owner": "users/...", "videos": [...],
                             "viewer_token": ..., "uploader_tokens": [...], "clips": [paths]}
  STREAMIFY_LT_LEDGER        JSON-lines file; one line per upload that CompleteUpload accepted
  STREAMIFY_LT_COUNTERS      JSON file written at the end: client-side retries and stream breaks
  STREAMIFY_LT_WAIT_READY    "1": an uploader follows its video (WatchVideo) until READY
  STREAMIFY_LT_UPLOADERS     exactly this many Uploaders (locust's fixed_count); 0: by weight

User classes (pick them on the locust command line; run.py's --profile does):

  Viewer    ListVideos -> GetVideo -> master playlist -> media + audio playlists -> init
            segments -> a run of segments, switching quality half-way like hls.js's ABR does.
  Uploader  CreateUpload -> pre-signed PUT(s) straight to storage -> CompleteUpload, then
            (optionally) WatchVideo until READY. Writes carry a request_id and are retried by
            the client with the same id on UNAVAILABLE (Envoy retries writes only on
            connect-failure), as `streamify upload` and the web page do; a call that succeeds
            after retries is a success, the retries are counted in STREAMIFY_LT_COUNTERS.

Every gRPC call is reported to locust as request_type "grpc" with the method's name; /media
requests are grouped by kind ("/media master.m3u8", "/media segment", ...).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urljoin

import grpc
import grpc.experimental.gevent as grpc_gevent
import requests
from locust import HttpUser, between, events, task

grpc_gevent.init_gevent()  # grpcio's blocking calls must yield to gevent's hub

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "shared"))
from google.protobuf import field_mask_pb2  # noqa: E402

from streamify.core.backoff import backoff_delay  # noqa: E402
from streamify.v1 import metadata_service_pb2 as meta  # noqa: E402
from streamify.v1 import metadata_service_pb2_grpc as meta_grpc  # noqa: E402
from streamify.v1 import upload_service_pb2 as up  # noqa: E402
from streamify.v1 import upload_service_pb2_grpc as up_grpc  # noqa: E402
from streamify.v1 import video_pb2  # noqa: E402

GATEWAY = os.environ.get("STREAMIFY_LT_GATEWAY", "127.0.0.1:8080")
SEED = (
    json.loads(Path(os.environ["STREAMIFY_LT_SEED"]).read_text())
    if os.environ.get("STREAMIFY_LT_SEED")
    else {}
)
LEDGER = os.environ.get("STREAMIFY_LT_LEDGER", "")
COUNTERS = os.environ.get("STREAMIFY_LT_COUNTERS", "")
WAIT_READY = os.environ.get("STREAMIFY_LT_WAIT_READY", "1") == "1"

RPC_TIMEOUT = 10.0  # seconds per attempt (the gateway's per-try timeout for reads is 5 s)
WRITE_ATTEMPTS = 8  # a killed replica is back within a few seconds (supervisor backoff)
PUT_ATTEMPTS = 5
READY_WAIT_SECONDS = 180.0
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}

_counts: dict[str, int] = {}
_counts_lock = threading.Lock()
_ledger_lock = threading.Lock()


def count(what: str, n: int = 1) -> None:
    with _counts_lock:
        _counts[what] = _counts.get(what, 0) + n


def backoff(attempt: int) -> float:
    return backoff_delay(attempt, base=0.25, cap=4.0)


@events.test_stop.add_listener
def _write_counters(environment, **_kw) -> None:
    if COUNTERS:
        with _counts_lock:
            Path(COUNTERS).write_text(json.dumps(_counts, indent=2, sort_keys=True))


class GrpcClient:
    """Wraps grpcio stubs: every call becomes one locust request event named after the method.

    `retry_writes`: UNAVAILABLE / DEADLINE_EXCEEDED are retried with the same request (so with
    the same request_id) and the event covers all attempts; only the final outcome counts."""

    def __init__(self, environment, target: str, token: str) -> None:
        self.environment = environment
        self.channel = grpc.insecure_channel(target)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.meta = meta_grpc.MetadataServiceStub(self.channel)
        self.upload = up_grpc.UploadServiceStub(self.channel)

    def call(self, service: str, method: str, request, *, retry: bool = False):
        stub = self.meta if service == "MetadataService" else self.upload
        name = f"{service}/{method}"
        started = time.perf_counter()
        reply = exception = None
        attempts = WRITE_ATTEMPTS if retry else 1
        for attempt in range(attempts):
            try:
                reply = getattr(stub, method)(request, metadata=self.metadata, timeout=RPC_TIMEOUT)
                exception = None
                break
            except grpc.RpcError as error:
                exception = error
                if error.code() not in RETRYABLE or attempt == attempts - 1:
                    break
                count(f"client retry {name} ({error.code().name})")
                time.sleep(backoff(attempt))
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=reply.ByteSize() if reply is not None else 0,
            exception=exception,
            context={},
        )
        if exception is not None:
            raise exception
        return reply

    def close(self) -> None:
        self.channel.close()


class StreamifyUser(HttpUser):
    abstract = True
    host = f"http://{GATEWAY}"

    def on_stop(self) -> None:
        if getattr(self, "grpc", None) is not None:
            self.grpc.close()


# --- playback ---------------------------------------------------------------------------------


def parse_master(text: str) -> tuple[list[tuple[int, str]], str | None]:
    """(bandwidth, uri) of each variant, lowest first, and the audio group's URI if any."""
    variants: list[tuple[int, str]] = []
    audio = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(a.split("=", 1) for a in _split_attrs(line.split(":", 1)[1]))
            uri = next(x for x in lines[i + 1 :] if x and not x.startswith("#"))
            variants.append((int(attrs.get("BANDWIDTH", "0")), uri))
        elif line.startswith("#EXT-X-MEDIA:") and "TYPE=AUDIO" in line and "URI=" in line:
            audio = line.split('URI="', 1)[1].split('"', 1)[0]
    return sorted(variants), audio


def _split_attrs(text: str) -> list[str]:
    out, cur, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [x for x in out + [cur] if "=" in x]


def parse_media(text: str) -> tuple[str | None, list[str]]:
    """The EXT-X-MAP init URI and the segment URIs of a media playlist."""
    init = None
    segments = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            init = line.split('URI="', 1)[1].split('"', 1)[0]
        elif line and not line.startswith("#"):
            segments.append(line)
    return init, segments


class Viewer(StreamifyUser):
    """Someone browsing and watching: the web page's calls over gRPC, then hls.js on /media."""

    weight = 9
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.grpc = GrpcClient(self.environment, GATEWAY, SEED["viewer_token"])
        self.owner = SEED["owner"]

    def media(self, url: str, kind: str, *, text: bool = False):
        with self.client.get(url, name=f"/media {kind}", catch_response=True) as reply:
            if reply.status_code != 200:
                reply.failure(f"HTTP {reply.status_code}")
                return None
            if not reply.content:
                reply.failure("empty body")
                return None
            if text and not reply.text.startswith("#EXTM3U"):
                reply.failure("not a playlist")
                return None
            reply.success()
            return reply.text if text else reply.content

    @task
    def watch(self) -> None:
        page = self.grpc.call(
            "MetadataService",
            "ListVideos",
            meta.ListVideosRequest(
                owner=self.owner, status=video_pb2.VIDEO_STATUS_READY, page_size=20
            ),
        )
        if not page.videos:
            return
        video = self.grpc.call(
            "MetadataService",
            "GetVideo",
            meta.GetVideoRequest(name=random.choice(page.videos).name),
        )
        if video.poster_url:
            self.media(video.poster_url, "poster.jpg")
        master_url = video.playback_url
        master = self.media(master_url, "master.m3u8", text=True)
        if master is None:
            return
        variants, audio_uri = parse_master(master)
        if not variants:
            return
        # hls.js starts low (no bandwidth estimate yet) and switches up once it has measured.
        level_url = urljoin(master_url, variants[0][1])
        level = self.media(level_url, "media playlist", text=True)
        audio_url = urljoin(master_url, audio_uri) if audio_uri else None
        audio = self.media(audio_url, "audio playlist", text=True) if audio_url else None
        if level is None or (audio_url and audio is None):
            return
        init, segments = parse_media(level)
        a_init, a_segments = parse_media(audio) if audio else (None, [])
        if init:
            self.media(urljoin(level_url, init), "init.mp4")
        if a_init:
            self.media(urljoin(audio_url, a_init), "init.mp4")
        switch_at = max(1, len(segments) // 2) if len(variants) > 1 else len(segments) + 1
        for i in range(len(segments)):
            if i == switch_at:  # quality switch: new level playlist, its init, same position
                level_url = urljoin(master_url, variants[-1][1])
                level = self.media(level_url, "media playlist", text=True)
                if level is None:
                    return
                init, segments_hi = parse_media(level)
                if init:
                    self.media(urljoin(level_url, init), "init.mp4")
                segments = segments_hi
                count("quality switches")
            if i < len(segments):
                self.media(urljoin(level_url, segments[i]), "segment")
            if i < len(a_segments):
                self.media(urljoin(audio_url, a_segments[i]), "segment")


# --- uploads ----------------------------------------------------------------------------------

_uploader_index = iter(range(10**6))


class Uploader(StreamifyUser):
    """Someone uploading a short clip: half like the web page (Uppy: forced multipart, signed
    parts), half like `streamify upload` for a small file (one pre-signed PUT)."""

    weight = 1
    fixed_count = int(os.environ.get("STREAMIFY_LT_UPLOADERS", "0"))  # 0: by weight
    wait_time = between(2, 5)

    def on_start(self) -> None:
        tokens = SEED["uploader_tokens"]
        self.index = next(_uploader_index) % len(tokens)
        self.token = tokens[self.index]
        self.grpc = GrpcClient(self.environment, GATEWAY, self.token)
        self.clips = [Path(p) for p in SEED["clips"]]
        self.storage = requests.Session()

    def put(self, url: str, body: bytes, headers: dict[str, str], name: str) -> str:
        """A pre-signed PUT straight to storage, retried on network errors and 5xx."""
        started = time.perf_counter()
        problem = None
        for attempt in range(PUT_ATTEMPTS):
            try:
                reply = self.storage.put(url, data=body, headers=headers, timeout=(5, 60))
            except requests.RequestException as exc:
                problem = exc
            else:
                if 200 <= reply.status_code < 300:
                    self.environment.events.request.fire(
                        request_type="PUT",
                        name=name,
                        response_time=(time.perf_counter() - started) * 1000,
                        response_length=len(body),
                        exception=None,
                        context={},
                    )
                    return reply.headers.get("ETag", "")
                problem = RuntimeError(f"HTTP {reply.status_code}: {reply.text[:200]}")
                if reply.status_code < 500:
                    break
            count(f"client retry {name}")
            time.sleep(backoff(attempt))
        self.environment.events.request.fire(
            request_type="PUT",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=problem,
            context={},
        )
        raise RuntimeError(f"{name} failed: {problem}")

    @task
    def upload(self) -> None:
        clip = random.choice(self.clips)
        body = clip.read_bytes()
        multipart = random.random() < 0.5
        started = time.perf_counter()
        try:
            created = self.grpc.call(
                "UploadService",
                "CreateUpload",
                up.CreateUploadRequest(
                    file_name=clip.name,
                    size_bytes=len(body),
                    content_type="video/mp4",
                    title=f"load {clip.stem}",
                    multipart=multipart,
                    request_id=uuid.uuid4().hex,
                ),
                retry=True,
            )
            if created.HasField("multipart"):
                part_size = created.multipart.part_size_bytes
                numbers = list(range(1, created.multipart.part_count + 1))
                signed = self.grpc.call(
                    "UploadService",
                    "SignParts",
                    up.SignPartsRequest(name=created.name, part_numbers=numbers),
                    retry=True,
                )
                parts = []
                for part in signed.parts:
                    chunk = body[(part.part_number - 1) * part_size : part.part_number * part_size]
                    etag = self.put(part.url, chunk, {}, "storage part PUT")
                    parts.append(up.CompletedPart(part_number=part.part_number, etag=etag))
            else:
                self.put(
                    created.single_put.url,
                    body,
                    dict(created.single_put.headers),
                    "storage single PUT",
                )
                parts = []
            done = self.grpc.call(
                "UploadService",
                "CompleteUpload",
                up.CompleteUploadRequest(
                    name=created.name, parts=parts, request_id=uuid.uuid4().hex
                ),
                retry=True,
            )
        except (grpc.RpcError, RuntimeError):
            count("uploads failed")
            return
        if done.state != up.UPLOAD_STATE_COMPLETED:
            count("uploads failed")
            return
        count("uploads completed")
        self.environment.events.request.fire(
            request_type="flow",
            name="upload (create..complete)",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(body),
            exception=None,
            context={},
        )
        if LEDGER:
            with _ledger_lock, open(LEDGER, "a") as ledger:
                ledger.write(
                    json.dumps(
                        {
                            "video": done.video,
                            "upload": done.name,
                            "uploader": self.index,
                            "completed_at": time.time(),
                            "multipart": multipart,
                        }
                    )
                    + "\n"
                )
        # Make it watchable by anyone, as the page's "publish" does (field mask, request_id).
        # a failure is reported as a failed UpdateVideo; the upload itself is not lost
        with contextlib.suppress(grpc.RpcError):
            self.grpc.call(
                "MetadataService",
                "UpdateVideo",
                meta.UpdateVideoRequest(
                    video=video_pb2.Video(name=done.video, visibility=video_pb2.VISIBILITY_PUBLIC),
                    update_mask=field_mask_pb2.FieldMask(paths=["visibility"]),
                    request_id=uuid.uuid4().hex,
                ),
                retry=True,
            )
        if WAIT_READY:
            self.follow(done.video, started)

    def follow(self, video: str, started: float) -> None:
        """WatchVideo until READY or FAILED, subscribing again when the stream breaks (a killed
        Metadata replica ends it); reported once as "upload to READY"."""
        deadline = time.monotonic() + READY_WAIT_SECONDS
        exception = None
        status = None
        while time.monotonic() < deadline:
            try:
                for message in self.grpc.meta.WatchVideo(
                    meta.WatchVideoRequest(name=video),
                    metadata=self.grpc.metadata,
                    timeout=max(1.0, deadline - time.monotonic()),
                ):
                    status = message.video.status
                    if status in (video_pb2.VIDEO_STATUS_READY, video_pb2.VIDEO_STATUS_FAILED):
                        break
                else:
                    count("WatchVideo streams ended early")
                    continue
                break
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    break
                count(f"WatchVideo resubscribed ({error.code().name})")
                time.sleep(backoff(0))
        if status != video_pb2.VIDEO_STATUS_READY:
            exception = RuntimeError(
                f"{video} is {video_pb2.VideoStatus.Name(status or 0)}, not READY"
            )
        self.environment.events.request.fire(
            request_type="flow",
            name="upload to READY",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=exception,
            context={},
        )
