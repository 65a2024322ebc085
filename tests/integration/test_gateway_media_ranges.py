"""Range on /media, differentially: every Range form a client may send, on objects of every size
the pipeline produces, cold (a fresh key: the origin is asked) and warm (the cache answers),
against the answer RFC 9110 section 14 demands, computed here (``rfc9110_answer``) and checked
against SeaweedFS's own 206s where it gives one. Plus clients that hang up early, and the FFmpeg
CLI (which sends `Range: bytes=0-` for every object) reading a cold segment above 1 MiB.

Why (docs/envoy-range-repro/README.md): the gateway once buffered the body to cut a 206 out of a
cold 200, which answered 500 above 1 MiB and, with Envoy 1.40's old cache filter, crashed Envoy
(SIGSEGV); that cache filter also crashes when clients hang up early. Every test here asserts
that the same Envoy process (PID) is still LIVE at the end.

The answers the gateway gives where RFC 9110 leaves a choice: several ranges -> the full 200
(no multipart); another unit or a syntactically invalid Range -> the full 200 (ignored, not 416);
a suffix range on an empty object -> the full (empty) 200; HEAD -> 200, Range ignored.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import random
import re
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest
import requests

from streamify.gateway.envoy import Envoy
from streamify.v1 import metadata_service_pb2 as api
from streamify.v1.video_pb2 import Video, Visibility
from tests.support.clips import make_clip
from tests.support.media_gateway import media_gateway
from tests.support.metadata import bearer, running_metadata, service_settings

pytestmark = pytest.mark.integration

MiB = 1 << 20
SEGMENT_CC = "public, max-age=31536000, immutable"
PLAYLIST_CC = "public, max-age=2"
# Tiny objects and playlists, segments around Envoy's 1 MiB stream buffer, big segments, and
# objects above MediaConfig.cache_max_body_bytes (16 MiB).
SIZES = (0, 1, 2048, MiB - 1, MiB + 1, 5 * MiB, int(15.9 * MiB), 20 * MiB)
PLAYLIST_SIZE = 2048  # stored as an HLS playlist (its content type and short max-age)
HUGE = "99999999999999999999999"  # past the end of anything, and past 2**64
RANGE_FORMS = (
    None,
    "bytes=0-",  # FFmpeg / libavformat, Chrome's media loader
    "bytes=0-0",
    "bytes=0-1",  # Safari's probe
    "bytes=100-199",
    f"bytes={MiB - 100}-{MiB + 99}",  # across the 1 MiB mark
    "bytes=1-",
    "bytes=-1",
    "bytes=-16",
    f"bytes=-{30 * MiB}",  # a suffix longer than the object: all of it
    f"bytes=5-{HUGE}",  # a last-pos past the end: up to the end
    "bytes=000-009",
    "bytes=0-1,5-9",  # several ranges: the full 200
    f"bytes=0-1,{40 * MiB}-",  # several, one satisfiable: the full 200
    f"bytes={40 * MiB}-,{50 * MiB}-",  # several, none satisfiable: 416
    f"bytes={40 * MiB}-",  # past the end: 416
    f"bytes={40 * MiB}-{40 * MiB + 1}",
    f"bytes={HUGE}-",
    "bytes=-0",  # an empty suffix: 416
    "BYTES=0-9",  # units are case-insensitive
    "bytes= 0-9",
    "bytes=0-9,",  # an empty list element is ignored
    "bytes=5-2",  # invalid: ignored
    "bytes=abc",
    "bytes=",
    "bytes=-",
    "bytes=1-2-3",
    "items=0-1",  # another unit: ignored
)
_base_ids = itertools.count(251)


# --------------------------------------------------------------------------- the oracle


def _parse_range(value: str) -> list[tuple[int | None, int | None]] | None:
    """RFC 9110 14.1/14.2: the byte range-specs as (first, last) / (None, suffix), or None when
    the field is to be ignored (another unit, invalid syntax)."""
    m = re.fullmatch(r"[ \t]*([^ \t=]+)[ \t]*=(.*)", value, re.S)
    if m is None or m.group(1).lower() != "bytes":
        return None
    specs: list[tuple[int | None, int | None]] = []
    for element in m.group(2).split(","):
        element = element.strip(" \t")
        if not element:  # RFC 9110 5.6.1: empty list elements are ignored
            continue
        spec = re.fullmatch(r"(\d*)-(\d*)", element)
        if spec is None or spec.group(0) == "-":
            return None
        first, last = spec.groups()
        if not first:
            specs.append((None, int(last)))
        elif last and int(last) < int(first):
            return None  # an invalid range-spec makes the whole field invalid
        else:
            specs.append((int(first), int(last) if last else None))
    return specs or None


def rfc9110_answer(
    method: str, range_value: str | None, body: bytes
) -> tuple[int, str | None, bytes]:
    """(status, Content-Range, body) of a GET or HEAD for `body` with this Range field."""
    size = len(body)
    full = (200, None, body if method == "GET" else b"")
    if method != "GET" or range_value is None:  # 14.2: Range is defined for GET only
        return full
    specs = _parse_range(range_value)
    if specs is None:
        return full
    satisfiable: list[tuple[int, int]] = []
    for first, last in specs:
        if first is None:  # suffix-range: satisfiable when the length is not zero (14.1.1)
            if last:
                if size == 0:
                    return full  # satisfiable, but an empty object has no byte to send
                satisfiable.append((max(size - last, 0), size - 1))
        elif first < size:
            satisfiable.append((first, size - 1 if last is None else min(last, size - 1)))
    if not satisfiable:
        return 416, f"bytes */{size}", b""
    if len(specs) > 1:
        return full  # a server may ignore Range: the gateway sends no multipart
    a, b = satisfiable[0]
    return 206, f"bytes {a}-{b}/{size}", body[a : b + 1]


def test_the_oracle_on_known_answers():
    body = bytes(range(10))
    assert rfc9110_answer("GET", "bytes=2-4", body) == (206, "bytes 2-4/10", b"\x02\x03\x04")
    assert rfc9110_answer("GET", "bytes=-3", body) == (206, "bytes 7-9/10", body[7:])
    assert rfc9110_answer("GET", "bytes=8-20", body) == (206, "bytes 8-9/10", body[8:])
    assert rfc9110_answer("GET", "bytes=10-", body) == (416, "bytes */10", b"")
    assert rfc9110_answer("GET", "bytes=-0", body) == (416, "bytes */10", b"")
    assert rfc9110_answer("GET", "bytes=0-1,4-5", body) == (200, None, body)
    assert rfc9110_answer("GET", "bytes=3-1", body) == (200, None, body)
    assert rfc9110_answer("HEAD", "bytes=0-1", body) == (200, None, b"")
    assert rfc9110_answer("GET", "bytes=0-", b"") == (416, "bytes */0", b"")
    assert rfc9110_answer("GET", "bytes=-5", b"") == (200, None, b"")


# --------------------------------------------------------------------------- the gateway


class Gateway:
    def __init__(self, envoy: Envoy, port: int, s3, bucket: str, public_id: str) -> None:
        self.envoy, self.port, self.s3, self.bucket, self.public_id = (
            envoy,
            port,
            s3,
            bucket,
            public_id,
        )
        self.http = requests.Session()

    def key(self, *parts: object) -> str:
        return "/".join([f"videos/{self.public_id}/ranges", *map(str, parts)])

    def url(self, key: str) -> str:
        return f"http://127.0.0.1:{self.port}/media/{key}"

    def put(self, key: str, body: bytes, playlist: bool = False) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            CacheControl=PLAYLIST_CC if playlist else SEGMENT_CC,
            ContentType="application/vnd.apple.mpegurl" if playlist else "video/mp2t",
        )

    def copy(self, source: str, key: str) -> None:
        self.s3.copy_object(
            Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source}
        )

    def request(
        self, method: str, key: str, range_value: str | None = None, **headers: str
    ) -> requests.Response:
        headers = {"Accept-Encoding": "identity", **headers}
        if range_value is not None:
            headers["Range"] = range_value
        return self.http.request(method, self.url(key), headers=headers, timeout=60)

    def origin_requests(self) -> int:
        return self.envoy.stats("cluster.media_origin.upstream_rq_total").get(
            "cluster.media_origin.upstream_rq_total", 0
        )

    def assert_alive(self, pid: int | None) -> None:
        assert pid is not None and self.envoy.pid == pid, (
            f"Envoy died or was replaced:\n{self.envoy.log_tail()}"
        )
        assert self.envoy.ready(), "Envoy's admin /ready no longer says LIVE"


@pytest.fixture(scope="module")
async def gateway(seaweedfs, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gateway-media-ranges")
    settings = service_settings(data_dir=tmp, **seaweedfs.settings_overrides())
    async with running_metadata(settings) as metadata:
        public = await metadata.stub.CreateVideo(
            api.CreateVideoRequest(
                video=Video(title="ranges", visibility=Visibility.VISIBILITY_PUBLIC)
            ),
            metadata=bearer("alice"),
        )
        async with media_gateway(
            tmp, seaweedfs, settings, metadata.target, next(_base_ids)
        ) as served:
            gw = Gateway(
                served.envoy,
                served.port,
                served.s3,
                seaweedfs.media_bucket,
                public.name.split("/")[1],
            )
            try:
                yield gw
            finally:
                gw.http.close()


def _body(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def _describe(r: requests.Response) -> str:
    return (
        f"{r.status_code} content-range={r.headers.get('content-range')} "
        f"content-length={r.headers.get('content-length')} body={len(r.content)} B age={r.headers.get('age')}"
    )


def _mismatch(r: requests.Response, want: tuple[int, str | None, bytes]) -> str | None:
    status, content_range, body = want
    got_length = r.headers.get("content-length")
    if (r.status_code, r.headers.get("content-range"), r.content) != want or (
        got_length is not None and int(got_length) != len(body)
    ):
        return f"got {_describe(r)}; want {status} content-range={content_range} body={len(body)} B"
    return None


def _differential(gw: Gateway) -> list[str]:
    problems: list[str] = []
    for size in SIZES:
        body, playlist = _body(size), size == PLAYLIST_SIZE
        source = gw.key(size, "source.m3u8" if playlist else "source.ts")
        gw.put(source, body, playlist)
        keys = []
        for i in range(len(RANGE_FORMS)):  # a fresh key per form: each is cold once
            keys.append(gw.key(size, f"{i}.m3u8" if playlist else f"{i}.ts"))
            gw.copy(source, keys[-1])
        for key, range_value in zip(keys, RANGE_FORMS, strict=True):
            want = rfc9110_answer("GET", range_value, body)
            asked = gw.origin_requests()
            cold = gw.request("GET", key, range_value)
            if "age" in cold.headers or gw.origin_requests() == asked:
                problems.append(
                    f"GET {size} B cold Range={range_value!r}: the origin was not asked ({_describe(cold)})"
                )
            asked = gw.origin_requests()
            # another viewer (its own query and cookies): the same cache entry
            warm = gw.request("GET", f"{key}?viewer=2", range_value, Cookie="viewer=2")
            if "age" not in warm.headers or gw.origin_requests() != asked:
                problems.append(
                    f"GET {size} B warm Range={range_value!r}: not answered by the cache ({_describe(warm)})"
                )
            for phase, r in (("cold", cold), ("warm", warm)):
                if (problem := _mismatch(r, want)) is not None:
                    problems.append(f"GET {size} B {phase} Range={range_value!r}: {problem}")
        # every key was first asked for a range: the cache holds the whole objects all the same
        for key in keys[:6]:
            asked = gw.origin_requests()
            whole = gw.request("GET", key)
            if _mismatch(whole, (200, None, body)) or gw.origin_requests() != asked:
                problems.append(
                    f"GET {size} B after a Range: {_describe(whole)}, origin asked {gw.origin_requests() - asked}x"
                )
        # HEAD ignores Range (RFC 9110 14.2), cold and warm
        head_key = gw.key(size, "head.ts")
        gw.copy(source, head_key)
        for range_value in (
            None,
            "bytes=0-",
            "bytes=100-199",
            f"bytes={40 * MiB}-",
            "bytes=0-1,5-9",
            None,
        ):
            r = gw.request("HEAD", head_key, range_value)
            if (
                r.status_code,
                r.headers.get("content-range"),
                r.content,
                r.headers.get("content-length"),
            ) != (200, None, b"", str(size)):
                problems.append(f"HEAD {size} B Range={range_value!r}: {_describe(r)}")
    return problems


async def test_every_range_form_on_every_size_cold_and_warm_answers_as_rfc_9110_says(gateway):
    pid = gateway.envoy.pid
    problems = await asyncio.to_thread(_differential, gateway)
    assert not problems, f"{len(problems)} wrong answers:\n" + "\n".join(problems[:60])
    gateway.assert_alive(pid)


def _origin_agrees(gw: Gateway) -> list[str]:
    """SeaweedFS (the origin, an independent implementation) on the single ranges it serves."""
    problems = []
    for size in (1, 2048, MiB + 1, 5 * MiB):
        body, key = _body(size), gw.key(size, "origin.ts")
        gw.put(key, body)
        for range_value in RANGE_FORMS:
            want = rfc9110_answer("GET", range_value, body)
            if want[0] != 206 or not re.fullmatch(r"bytes=\d*-\d{0,15}", range_value or ""):
                continue
            got = gw.s3.get_object(Bucket=gw.bucket, Key=key, Range=range_value)
            if (got.get("ContentRange"), got["Body"].read()) != want[1:]:
                problems.append(
                    f"SeaweedFS {size} B Range={range_value!r}: {got.get('ContentRange')}, want {want[1]}"
                )
    return problems


async def test_the_oracle_agrees_with_the_origins_own_single_ranges(gateway):
    problems = await asyncio.to_thread(_origin_agrees, gateway)
    assert not problems, "\n".join(problems)


def _if_range(gw: Gateway) -> None:
    body, key = _body(3 * MiB), gw.key("if-range", "seg.ts")
    gw.put(key, body)
    fresh = itertools.count()
    # Each case on a fresh copy (cold, then warm); a copy has its own Last-Modified (the second
    # it was made), so the validators are read from the copy itself.
    for validator_of, matches in (
        (lambda etag, modified: etag, True),
        (lambda etag, modified: modified, True),
        (lambda etag, modified: '"other"', False),
        (lambda etag, modified: f"W/{etag}", False),
        (lambda etag, modified: "Thu, 01 Jan 1970 00:00:00 GMT", False),
    ):
        cold = gw.key("if-range", f"{next(fresh)}.ts")
        gw.copy(key, cold)
        head = gw.s3.head_object(Bucket=gw.bucket, Key=cold)  # the origin's, not a cached answer
        validator = validator_of(
            head["ETag"], head["ResponseMetadata"]["HTTPHeaders"]["last-modified"]
        )
        for phase in ("cold", "warm"):
            r = gw.request("GET", cold, "bytes=100-199", **{"If-Range": validator})
            want = (
                (206, f"bytes 100-199/{len(body)}", body[100:200]) if matches else (200, None, body)
            )
            assert _mismatch(r, want) is None, (
                f"If-Range {validator!r} ({phase}): {_mismatch(r, want)}"
            )


async def test_if_range_sends_the_range_only_while_the_validator_matches(gateway):
    pid = gateway.envoy.pid
    await asyncio.to_thread(_if_range, gateway)
    gateway.assert_alive(pid)


def _hang_up(gw: Gateway, key: str, range_value: str | None, read: int, reset: bool) -> None:
    """A client that sends its GET, reads `read` bytes of the answer (0: none) and hangs up,
    with a FIN or (`reset`) an RST."""
    request = f"GET /media/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if range_value:
        request += f"Range: {range_value}\r\n"
    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as s:
        s.sendall((request + "\r\n").encode())
        got = 0
        while got < read and (chunk := s.recv(read - got)):
            got += len(chunk)
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _early_hang_ups(gw: Gateway) -> None:
    """Players abort loads all the time (seeks, quality switches); with Envoy 1.40's old cache
    filter a handful of such aborts on cold objects crashed Envoy. Bounded: 8 objects, 12
    requests each, 4 at a time."""
    rng = random.Random(7)
    sizes = (2048, 3 * MiB, 20 * MiB)
    ranges = (
        None,
        "bytes=0-",
        "bytes=0-1",
        "bytes=100-199",
        f"bytes={2 * MiB}-",
        f"bytes={40 * MiB}-",
    )
    bodies = {size: _body(size) for size in sizes}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for n in range(8):
            size = sizes[n % len(sizes)]
            key = gw.key("hang-up", f"{n}.ts")
            gw.put(key, bodies[size])
            jobs = [
                pool.submit(
                    _hang_up,
                    gw,
                    key,
                    rng.choice(ranges),
                    rng.choice((0, 1, 64 * 1024)),
                    rng.random() < 0.5,
                )
                for _ in range(8)
            ]
            jobs += [pool.submit(gw.request, "GET", key, "bytes=100-199") for _ in range(2)]
            jobs += [
                pool.submit(gw.request, "HEAD", key),
                pool.submit(requests.get, gw.url(key), timeout=60),
            ]
            for job in jobs:
                job.result()
    for n in range(8):  # the cache still holds the whole objects, and answers ranges from them
        body = bodies[sizes[n % len(sizes)]]
        key = gw.key("hang-up", f"{n}.ts")
        whole = gw.request("GET", key)
        assert _mismatch(whole, (200, None, body)) is None, f"{key}: {_describe(whole)}"
        part = gw.request("GET", key, "bytes=1000-1999")
        assert _mismatch(part, rfc9110_answer("GET", "bytes=1000-1999", body)) is None, (
            f"{key}: {_describe(part)}"
        )


async def test_clients_that_hang_up_early_neither_crash_envoy_nor_spoil_the_cache(gateway):
    pid = gateway.envoy.pid
    await asyncio.to_thread(_early_hang_ups, gateway)
    gateway.assert_alive(pid)


def _ffmpeg() -> str:
    found = shutil.which("ffmpeg") or (
        "/usr/bin/ffmpeg" if Path("/usr/bin/ffmpeg").exists() else None
    )
    assert found, "no ffmpeg CLI: apt-get install -y ffmpeg (./streamify test installs it)"
    return found


def _ffmpeg_reads(gw: Gateway, url: str) -> tuple[int, str, int]:
    """FFmpeg decodes `url` to nothing: (exit code, its error output, video frames decoded)."""
    proc = subprocess.run(
        [
            _ffmpeg(),
            "-nostdin",
            "-v",
            "error",
            "-progress",
            "pipe:1",
            "-i",
            url,
            "-map",
            "0:v",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    frames = [int(v) for v in re.findall(r"^frame=(\d+)$", proc.stdout, re.M)]
    return proc.returncode, proc.stderr, frames[-1] if frames else 0


async def test_ffmpeg_reads_a_cold_segment_above_1_mib(gateway, tmp_path):
    # FFmpeg's http protocol sends `Range: bytes=0-` for the object (the request of the report)
    segment = await asyncio.to_thread(
        make_clip, tmp_path / "seg.ts", width=1280, height=720, duration=2, audio=True
    )
    data = segment.read_bytes()
    assert len(data) > MiB, len(data)
    key = gateway.key("ffmpeg", "seg0.ts")
    gateway.put(key, data)
    pid = gateway.envoy.pid
    for phase in ("cold", "warm"):
        code, errors, frames = await asyncio.to_thread(_ffmpeg_reads, gateway, gateway.url(key))
        assert code == 0 and not errors.strip(), f"ffmpeg ({phase}) exited {code}:\n{errors}"
        assert frames == 60, f"ffmpeg ({phase}) decoded {frames} of 60 frames"
    gateway.assert_alive(pid)
