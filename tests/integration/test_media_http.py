"""Sources read over HTTP the way workers read pre-signed S3 GET URLs: FFmpeg seeks with Range
requests (an MP4 with its index at the end needs them), and HTTP failures become MediaErrors
with the right retryability and no URL query string (credentials) in the message."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from streamify.transcode.media.errors import MediaError, Reason
from streamify.transcode.media.ladder import plan_chunks
from streamify.transcode.media.models import Rendition
from streamify.transcode.media.probe import probe
from streamify.transcode.media.video_chunk import encode_video_chunk
from tests.support import clips

pytestmark = pytest.mark.integration


class RangeHandler(BaseHTTPRequestHandler):
    """Serves files from ``root`` with single Range support, like S3; /403/... and /404/...
    answer with that status."""

    root: Path
    ranges: list[str]

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        for status in (403, 404):
            if path.startswith(f"/{status}/"):
                self.send_error(status)
                return
        data = (self.root / path.lstrip("/")).read_bytes()
        header = self.headers.get("Range")
        start, end = 0, len(data) - 1
        if header and (m := re.fullmatch(r"bytes=(\d+)-(\d*)", header)):
            self.ranges.append(header)
            start = int(m.group(1))
            end = min(int(m.group(2)), end) if m.group(2) else end
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        with contextlib.suppress(
            BrokenPipeError, ConnectionResetError
        ):  # FFmpeg hangs up when it seeks elsewhere
            self.wfile.write(data[start : end + 1])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, list[str]]]:
    handler = type("Handler", (RangeHandler,), {"root": tmp_path, "ranges": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.ranges
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_probe_and_chunk_over_http_with_range_requests(server, tmp_path):
    base, ranges = server
    clips.moov_at_end_clip(tmp_path / "src.mp4")
    url = f"{base}/src.mp4?X-Amz-Signature=secret"
    info = probe(url)
    assert info.video is not None and (info.video.width, info.video.height) == (320, 180)
    assert any(r != "bytes=0-" for r in ranges), "the index at the end was fetched by range"
    chunk = plan_chunks(3.0, 1.0, 1, frame_rate=30.0)[1]
    rung = Rendition("180p", 320, 180, 300_000, 450_000, 600_000, "main", "veryfast")
    (out,) = encode_video_chunk(
        url,
        chunk,
        [rung],
        tmp_path / "out",
        segment_seconds=1.0,
        frame_rate=30.0,
        ts_offset=1.0,
    )
    assert [s.index for s in out.segments] == [1]
    assert len(clips.decode_video_segment(out.init_path, out.segments[0].path)) == 30


@pytest.mark.parametrize(
    "status,reason,retryable",
    [(404, Reason.SOURCE_NOT_FOUND, False), (403, Reason.SOURCE_UNAVAILABLE, True)],
)
def test_http_errors_are_typed_and_hide_the_signature(server, status, reason, retryable):
    base, _ = server
    with pytest.raises(MediaError) as caught:
        probe(f"{base}/{status}/src.mp4?X-Amz-Signature=secret")
    assert caught.value.reason == reason and caught.value.retryable is retryable
    assert "secret" not in str(caught.value)
