"""Fixtures of the interop tier: the output of the REAL mesh played by clients we did not write.

  interop_mesh    -> the whole mesh, started once for the tier as the README does (`streamify run`
                     via tests/support/local_mesh.py), on free ports and a temporary data dir.
  videos          -> {"public", "private", "unlisted", "private_other"}: clips uploaded with the
                     `streamify upload --wait` CLI, visibility set with MetadataService.UpdateVideo
                     (update_mask), each with the playback_url GetVideo gives its owner.
  players_origin  -> base URL of a small static site serving one page per third-party player
                     (hls.js, Shaka Player; their pinned dist files from node_modules/) on another
                     origin than the gateway, as an embedding site would: so CORS is exercised.
  browser         -> Debian's Chromium (playwright), one per module.

Every test of the tier also checks that the gateway did not crash while it ran (gateway_survives),
and the FFmpeg tests run last (they send `Range`, see test_ffmpeg.py).
"""

from __future__ import annotations

import concurrent.futures
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.browser import REPO, chromium
from tests.support.clips import make_clip
from tests.support.local_mesh import LocalMesh
from tests.support.servers import free_port

PAGES = Path(__file__).resolve().parent / "players"
NODE_MODULES = REPO / "node_modules"
# URL path on the players' site -> the pinned package's dist file (package.json/package-lock.json)
PLAYER_FILES = {
    "/hls.min.js": NODE_MODULES / "hls.js" / "dist" / "hls.min.js",
    "/shaka-player.compiled.js": NODE_MODULES
    / "shaka-player"
    / "dist"
    / "shaka-player.compiled.js",
}
USER = "interop"
READY_TIMEOUT = float(os.environ.get("STREAMIFY_INTEROP_READY_TIMEOUT", "600"))


@dataclass
class UploadedVideo:
    key: str  # "public", "private", ...
    name: str  # videos/{id}
    visibility: str  # VISIBILITY_PUBLIC, ...
    playback_url: str  # as GetVideo gives it to the owner
    poster_url: str = ""  # likewise
    renditions: list[dict] = field(default_factory=list)  # [{"id": "720p", "height": 720}, ...]
    upload_seconds: float = 0.0

    @property
    def id(self) -> str:
        return self.name.removeprefix("videos/")

    @property
    def heights(self) -> list[int]:
        return [r["height"] for r in self.renditions]


# ----------------------------------------------------------------------------------------- mesh


@pytest.fixture(scope="session")
def interop_mesh(whole_mesh) -> LocalMesh:
    return whole_mesh  # shared with the e2e tier


@pytest.fixture(scope="session")
def interop_token(interop_mesh) -> str:
    return interop_mesh.token(USER)


def _metadata_stub(gateway: str):
    import grpc

    from streamify.v1 import metadata_service_pb2_grpc

    channel = grpc.insecure_channel(gateway)  # native gRPC (h2c) through the gateway
    return channel, metadata_service_pb2_grpc.MetadataServiceStub(channel)


def _upload(
    mesh: LocalMesh, token: str, clip: Path, title: str, state_dir: Path
) -> tuple[str, float]:
    """`streamify upload --wait --json` as a user runs it, against the gateway. -> (name, seconds)"""
    env = {**mesh.env, "STREAMIFY_UPLOAD_STATE_DIR": str(state_dir)}
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamify.cli",
            "upload",
            str(clip),
            "--title",
            title,
            "--wait",
            "--json",
            "--quiet",
            "--server",
            mesh.gateway,
            "--metadata-server",
            mesh.gateway,
            "--token",
            token,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=READY_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"upload of {clip.name} not READY after {READY_TIMEOUT:.0f}s: {err[-2000:]}"
        ) from None
    assert proc.returncode == 0, (
        f"streamify upload {clip.name}: exit {proc.returncode}\n{out}\n{err}"
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["video_status"] == "READY", result
    return result["video"], time.monotonic() - started


def _set_visibility(mesh: LocalMesh, token: str, name: str, visibility: str) -> UploadedVideo:
    from google.protobuf.field_mask_pb2 import FieldMask

    from streamify.v1 import metadata_service_pb2 as meta
    from streamify.v1.video_pb2 import Video, Visibility

    auth = (("authorization", f"Bearer {token}"),)
    channel, stub = _metadata_stub(mesh.gateway)
    with channel:
        stub.UpdateVideo(
            meta.UpdateVideoRequest(
                video=Video(name=name, visibility=Visibility.Value(visibility)),
                update_mask=FieldMask(paths=["visibility"]),
            ),
            metadata=auth,
            timeout=10,
        )
        video = stub.GetVideo(meta.GetVideoRequest(name=name), metadata=auth, timeout=10)
    assert Visibility.Name(video.visibility) == visibility
    assert video.playback_url, f"{name} has no playback_url"
    return UploadedVideo(
        key="",
        name=name,
        visibility=visibility,
        playback_url=video.playback_url,
        poster_url=video.poster_url,
        renditions=[
            {"id": r.id, "width": r.width, "height": r.height, "bandwidth": r.bandwidth}
            for r in video.renditions
        ],
    )


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# What each video is: (source clip, visibility). The 720p sources get a 720p/480p/360p/240p
# ladder; the second private video only serves the "grant of another video" negative test.
VIDEOS = {
    "public": (dict(width=1280, height=720, duration=10.0), "VISIBILITY_PUBLIC"),
    "private": (dict(width=1280, height=720, duration=10.0), "VISIBILITY_PRIVATE"),
    "unlisted": (dict(width=1280, height=720, duration=10.0), "VISIBILITY_UNLISTED"),
    "private_other": (dict(width=640, height=360, duration=4.0), "VISIBILITY_PRIVATE"),
}


@pytest.fixture(scope="session")
def videos(interop_mesh, interop_token, tmp_path_factory) -> dict[str, UploadedVideo]:
    """Uploads every clip of VIDEOS at once (the mesh's two workers transcode them), then sets
    each one's visibility; waits until anonymous reads of the PUBLIC/UNLISTED masters are
    allowed (the gateway's authz caches visibility for a few seconds)."""
    work = tmp_path_factory.mktemp("interop-clips")
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(VIDEOS)) as pool:
        clips = {
            k: pool.submit(make_clip, work / f"{k}.mp4", **spec) for k, (spec, _) in VIDEOS.items()
        }
        uploads = {
            k: pool.submit(
                _upload,
                interop_mesh,
                interop_token,
                clips[k].result(),
                f"interop {k}",
                work / f"state-{k}",
            )
            for k in VIDEOS
        }
        names = {k: f.result() for k, f in uploads.items()}
    result: dict[str, UploadedVideo] = {}
    for key, (_, visibility) in VIDEOS.items():
        name, seconds = names[key]
        video = _set_visibility(interop_mesh, interop_token, name, visibility)
        video.key, video.upload_seconds = key, seconds
        result[key] = video
    for key in ("public", "unlisted"):
        deadline = time.monotonic() + 15
        while http_status(result[key].playback_url) != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
    print(
        f"\n[interop] {len(result)} videos READY in {time.monotonic() - started:.1f}s: "
        + ", ".join(f"{k}={v.playback_url} {v.heights}" for k, v in result.items()),
        file=sys.stderr,
    )
    return result


def _gateway_answers(mesh: LocalMesh, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http_status(f"{mesh.url}/") < 500:
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


GATEWAY_CRASH = "envoy exited with status"


@pytest.fixture(autouse=True)
def gateway_survives(request):
    """Fails the test (at teardown) if the gateway crashed while it ran -- the supervisor
    restarts Envoy, so without this a crash only shows as "Connection refused" in whatever test
    comes next -- and waits for the restarted gateway before the next test."""
    if "interop_mesh" not in request.fixturenames:
        yield
        return
    mesh: LocalMesh = request.getfixturevalue("interop_mesh")
    before = mesh.log().count(GATEWAY_CRASH)
    yield
    log = mesh.log()
    if log.count(GATEWAY_CRASH) > before:
        crashes = [line for line in log.splitlines() if GATEWAY_CRASH in line][before:]
        back = _gateway_answers(mesh)
        pytest.fail(
            f"the gateway crashed during this test: {crashes} (see {mesh.data_dir}/logs/envoy.log)"
            + ("" if back else "; it did not come back within 60 s")
        )


def pytest_collection_modifyitems(config, items):
    """FFmpeg's clients last: they send `Range: bytes=0-`, which has crashed the gateway."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/interop/test_ffmpeg.py"))


# -------------------------------------------------------------------------------- players site


class _PlayersHandler(http.server.SimpleHTTPRequestHandler):
    """The player pages from tests/interop/players/ plus the pinned players' dist files."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(PAGES), **kwargs)

    def translate_path(self, path: str) -> str:
        bare = path.split("?", 1)[0].split("#", 1)[0]
        if bare in PLAYER_FILES:
            return str(PLAYER_FILES[bare])
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture(scope="session")
def players_origin() -> str:
    missing = [str(p) for p in PLAYER_FILES.values() if not p.is_file()]
    if missing:
        pytest.fail(
            f"pinned players missing ({', '.join(missing)}): run `npm ci` in {REPO} "
            "(./streamify test does it when package-lock.json changes)"
        )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _PlayersHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="interop-players", daemon=True)
    thread.start()
    try:
        # "localhost", not 127.0.0.1 like the gateway: another origin AND another site.
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@functools.cache
def player_versions() -> dict[str, str]:
    lock = json.loads((REPO / "package-lock.json").read_text())["packages"]
    return {name: lock[f"node_modules/{name}"]["version"] for name in ("hls.js", "shaka-player")}


def ffmpeg_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"no {name} on PATH: apt-get install -y ffmpeg")
    return path
