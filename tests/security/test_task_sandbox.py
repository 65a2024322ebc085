"""The process that parses an uploaded file is the one a hostile file would take over, so it
holds nothing worth taking and can reach nothing but its source: no credential in its
environment or settings, resource limits it cannot raise, and FFmpeg reading only real video
containers over the source's own protocol.

Real task processes (``python -m streamify.transcode.worker.tasks``, started the way the worker
starts them) reading from a real HTTP server on loopback, the stand-in for a presigned S3 URL
and for the internal address a hostile file would aim at."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import pytest

from streamify.core.config import Settings
from streamify.transcode.worker.task_process import TaskProcess
from streamify.transcode.worker.tasks import child_limits, child_settings
from streamify.v1 import worker_service_pb2 as pb
from tests.support.keys import signing_keys_of

pytestmark = pytest.mark.security

SECRETS = {
    "STREAMIFY_SIGNING_KEYS": signing_keys_of("worker"),
    "STREAMIFY_S3_SECRET_ACCESS_KEY": "s3-secret-key-that-must-stay-in-the-worker",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-key-that-must-stay-in-the-worker",
}


class _Server:
    """Answers /hang by never answering, /playlist.m3u8 with an HLS playlist whose only
    segment is /internal/admin.ts (an address the file's author wants the worker to fetch), and
    records every path requested."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.paths.append(path)
                if path == "/hang":
                    server.release.wait(60)
                    return
                if path == "/playlist.m3u8":
                    body = (
                        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n"
                        f"#EXTINF:4.0,\nhttp://127.0.0.1:{server.port}/internal/admin.ts\n"
                        "#EXT-X-ENDLIST\n"
                    ).encode()
                else:
                    body = b"internal data the file's author wants"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}?X-Amz-Signature=presigned"


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    thread = threading.Thread(target=s.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield s
    finally:
        s.release.set()
        s.httpd.shutdown()
        s.httpd.server_close()


@pytest.fixture
def worker_settings(monkeypatch, tmp_path) -> Settings:
    """The worker's own settings and environment, full of credentials."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return Settings(
        signing_keys=SECRETS["STREAMIFY_SIGNING_KEYS"],
        s3_secret_access_key=SECRETS["STREAMIFY_S3_SECRET_ACCESS_KEY"],
        worker_task_max_memory_bytes=3 * 1024**3,
        worker_task_max_cpu_seconds=600,
        worker_task_max_file_bytes=512 * 1024**2,
        worker_task_max_open_files=256,
        data_dir=tmp_path,
    )


def _probe(url: str) -> pb.TaskAssignment:
    return pb.TaskAssignment(
        task_id="probe", lease_id="l", probe=pb.ProbeSpec(source=pb.SourceRef(url=url))
    )


def _start(assignment: pb.TaskAssignment, settings: Settings, root: Path) -> TaskProcess:
    return TaskProcess(assignment, child_settings(settings), root, limits=child_limits(settings))


def _limits(pid: int) -> dict[str, str]:
    """/proc/PID/limits as {name: soft limit}."""
    lines = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    return {line[:26].strip(): line[26:47].strip() for line in lines}


async def test_the_process_reading_a_source_holds_no_credential_and_runs_under_limits(
    server, worker_settings, tmp_path
):
    process = _start(_probe(server.url("/hang")), worker_settings, tmp_path)
    await process.start()
    try:
        for _ in range(600):  # it is reading the source: the moment a hostile file runs
            if "/hang" in server.paths or process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert server.paths == ["/hang"], "the task process never read its source"
        assert process.pid is not None
        environ = Path(f"/proc/{process.pid}/environ").read_bytes()
        names = [item.split(b"=", 1)[0].decode() for item in environ.split(b"\0") if item]
        assert not [n for n in names if n.startswith(("STREAMIFY_", "AWS_"))], names
        assert not [s for s in SECRETS.values() if s.encode() in environ]
        limits = _limits(process.pid)
        assert limits["Max address space"] == str(3 * 1024**3)
        assert limits["Max cpu time"] == "600"
        assert limits["Max file size"] == str(512 * 1024**2)
        assert limits["Max open files"] == "256"
    finally:
        await process.close()


async def test_a_playlist_uploaded_as_a_video_makes_the_worker_fetch_nothing(
    server, worker_settings, tmp_path
):
    # The attack is real: FFmpeg left to its defaults follows the playlist to /internal/admin.ts
    # and returns what it read as the video's data.
    with contextlib.suppress(av.error.FFmpegError), av.open(server.url("/playlist.m3u8")) as c:
        for _ in c.demux():
            pass
    assert "/internal/admin.ts" in server.paths
    server.paths.clear()

    process = _start(_probe(server.url("/playlist.m3u8")), worker_settings, tmp_path)
    await process.start()
    try:
        messages = [m async for m in process.messages()]
        await process.wait()
    finally:
        await process.close()
    failure = messages[-1].failure
    assert failure.error.startswith("the file is not a video but a playlist"), messages[-1]
    assert failure.retryable is False
    assert set(server.paths) == {"/playlist.m3u8"}, server.paths  # opened, then sniffed


def test_a_task_past_its_cpu_limit_is_stopped_with_sigxcpu_so_the_worker_can_say_why():
    """The kernel sends SIGKILL at the hard CPU limit and SIGXCPU at the soft one; the worker
    turns only SIGXCPU into "the video needs more CPU time than one task may use"."""
    import signal
    import subprocess
    import sys

    busy = (
        "from streamify.transcode.worker.tasks import apply_limits\n"
        "apply_limits({'RLIMIT_CPU': 1})\n"
        "while True: pass\n"
    )
    proc = subprocess.run([sys.executable, "-c", busy], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGXCPU, proc
