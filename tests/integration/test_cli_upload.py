"""`streamify upload` end to end: the CLI runs as a subprocess against real Upload and Metadata
services (in this test's event loop) and a real SeaweedFS, exactly as a user would run it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import sys
from pathlib import Path

import grpc
import pytest

from streamify.core import storage_keys
from streamify.core.storage import make_s3_client
from streamify.metadata import app as metadata_app
from streamify.upload import app as upload_app
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import metadata_service_pb2_grpc, upload_service_pb2_grpc
from streamify.v1 import upload_service_pb2 as api
from streamify.v1.video_pb2 import Progress, VideoStatus, Visibility
from tests.support.keys import signing_keys_of
from tests.support.mesh import running_service
from tests.support.metadata import bearer, service_settings
from tests.support.servers import free_port

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
ALICE = bearer("alice")
TRANSCODER = bearer("transcode", kind="service")
MULTIPART_SIZE = 12 * MiB + 12345  # three parts of 5 MiB, 5 MiB and 2 MiB + 12345 bytes


class Mesh:
    def __init__(self, settings, upload_target, metadata_target, uploads, videos, tmp_path: Path):
        self.settings = settings
        self.upload_target, self.metadata_target = upload_target, metadata_target
        self.uploads, self.videos = uploads, videos
        self.s3 = make_s3_client(settings)
        self.home = tmp_path
        self.state_dir = tmp_path / "upload-state"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
        env.update(
            STREAMIFY_UPLOAD_TARGET=self.upload_target,
            STREAMIFY_METADATA_TARGET=self.metadata_target,
            STREAMIFY_TOKEN=ALICE[0][1].removeprefix("Bearer "),
            STREAMIFY_UPLOAD_STATE_DIR=str(self.state_dir),
        )
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    async def start(
        self, *args: str, env: dict[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        # Never subprocess.run here: the services answering the CLI run in this event loop.
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "streamify.cli",
            "upload",
            *args,
            cwd=self.home,
            env=env or self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        proc = await self.start(*args, env=env)
        out, err = await proc.communicate()
        return proc.returncode, out.decode(), err.decode()

    async def upload(self, name: str, who=ALICE) -> api.Upload:
        return await self.uploads.GetUpload(api.GetUploadRequest(name=name), metadata=who)

    async def held_parts(self, name: str) -> int:
        return len(
            (await self.uploads.ListParts(api.ListPartsRequest(name=name), metadata=ALICE)).parts
        )

    async def until_status(self, video_name: str, status: int) -> meta.Video:
        """Follows the video (WatchVideo, no deadline) until it has `status`."""
        seen = []
        async for message in self.videos.WatchVideo(
            meta.WatchVideoRequest(name=video_name), metadata=ALICE
        ):
            seen.append(VideoStatus.Name(message.video.status))
            if message.video.status == status:
                return message.video
        raise AssertionError(
            f"{video_name} ended as {seen[-1]} without becoming {VideoStatus.Name(status)}: {seen}"
        )

    def stored_sha256(self, upload: api.Upload) -> str:
        key = storage_keys.source_key(
            upload.video.removeprefix("videos/"), upload.name.removeprefix("uploads/")
        )
        body = self.s3.get_object(Bucket=self.settings.uploads_bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(MiB), b""):
            digest.update(chunk)
        return digest.hexdigest()

    def state_files(self) -> list[Path]:
        # not the CLI's ".tmp-*.json" being written (pathlib's glob matches dot files)
        found = self.state_dir.glob("*.json") if self.state_dir.exists() else []
        return sorted(p for p in found if not p.name.startswith("."))

    async def set_status(self, video_name: str, status: int, **fields) -> None:
        await self.videos.UpdateVideoStatus(
            meta.UpdateVideoStatusRequest(name=video_name, status=status, **fields),
            metadata=TRANSCODER,
        )


@pytest.fixture
async def mesh(tmp_path, seaweedfs):
    base = service_settings(
        data_dir=tmp_path / "data",
        upload_single_put_max_bytes=8 * MiB,
        upload_part_size_bytes=5 * MiB,
        upload_max_bytes=64 * MiB,
        upload_url_ttl_seconds=120,
        upload_max_pending_per_user=5,
        queue_visibility_timeout_seconds=5,
        **seaweedfs.settings_overrides(),
    )
    async with running_service(metadata_app.run, base) as metadata_target:
        settings = base.model_copy(update={"metadata_target": metadata_target})
        async with running_service(upload_app.run, settings) as upload_target:
            channels = [grpc.aio.insecure_channel(t) for t in (upload_target, metadata_target)]
            yield Mesh(
                settings,
                upload_target,
                metadata_target,
                upload_service_pb2_grpc.UploadServiceStub(channels[0]),
                metadata_service_pb2_grpc.MetadataServiceStub(channels[1]),
                tmp_path,
            )
            for channel in channels:
                await channel.close()


def video_file(path: Path, size: int) -> tuple[Path, str]:
    data = os.urandom(size)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def names_in(stdout: str) -> tuple[str, str]:
    lines = dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)
    return lines["video"], lines["upload"]


# --- success ---------------------------------------------------------------------------------


async def test_small_file_goes_up_in_one_put(mesh, tmp_path):
    path, sha = video_file(tmp_path / "cat.mp4", 300_000)
    code, out, err = await mesh.run(str(path), "--title", "Cat", "--description", "a cat")
    assert code == 0, err
    video_name, upload_name = names_in(out)
    upload = await mesh.upload(upload_name)
    assert upload.video == video_name and not upload.HasField("multipart")
    assert (upload.content_type, upload.size_bytes, upload.file_name) == (
        "video/mp4",
        300_000,
        "cat.mp4",
    )
    assert mesh.stored_sha256(upload) == sha
    video = await mesh.until_status(video_name, VideoStatus.VIDEO_STATUS_UPLOADED)
    assert (video.title, video.description, video.source_size_bytes) == ("Cat", "a cat", 300_000)
    assert "sent 293.0 KiB / 293.0 KiB  100.0%" in err  # the final progress line (stderr is no TTY)
    assert not mesh.state_files()  # removed after success


async def test_multipart_file_goes_up_in_parallel_parts(mesh, tmp_path):
    path, sha = video_file(tmp_path / "big.mov", MULTIPART_SIZE)
    code, out, err = await mesh.run(str(path), "--parallel", "3", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["multipart"] and (
        result["parts_total"],
        result["parts_sent"],
        result["parts_reused"],
    ) == (3, 3, 0)
    assert result["bytes_sent"] == MULTIPART_SIZE and not result["resumed"]
    upload = await mesh.upload(result["upload"])
    assert (
        upload.state == api.UploadState.UPLOAD_STATE_COMPLETED
        and upload.content_type == "video/quicktime"
    )
    assert mesh.stored_sha256(upload) == sha
    video = await mesh.until_status(result["video"], VideoStatus.VIDEO_STATUS_UPLOADED)
    assert video.title == "big.mov"  # the server's default title
    assert not mesh.state_files()


async def test_running_again_after_success_creates_no_second_upload(mesh, tmp_path):
    path, _ = video_file(tmp_path / "clip.webm", 50_000)
    code, out, err = await mesh.run(str(path), "--json")
    assert code == 0, err
    first = json.loads(out)
    code, out, err = await mesh.run(str(path), "--json")
    assert code == 0, err
    again = json.loads(out)
    assert (again["video"], again["upload"], again["already_completed"]) == (
        first["video"],
        first["upload"],
        True,
    )
    assert again["put_attempts"] == 0 and "already uploaded" in err
    listed = await mesh.videos.ListVideos(meta.ListVideosRequest(), metadata=ALICE)
    assert [v.name for v in listed.videos] == [first["video"]]


async def test_without_a_token_one_is_minted_for_the_user(mesh, tmp_path):
    path, sha = video_file(tmp_path / "dog.mp4", 10_000)
    env = mesh.env(
        STREAMIFY_TOKEN=None, STREAMIFY_SIGNING_KEYS=signing_keys_of("users"), USER="Alice"
    )
    code, out, err = await mesh.run(str(path), "--json", env=env)
    assert code == 0, err
    upload = await mesh.upload(json.loads(out)["upload"])  # alice can see it: it is hers
    assert upload.owner == "users/alice" and mesh.stored_sha256(upload) == sha


# --- resuming --------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
async def test_an_interrupted_upload_resumes_sending_only_the_missing_parts(mesh, tmp_path, sig):
    path, sha = video_file(tmp_path / "long.mp4", MULTIPART_SIZE)
    # 4 MiB/s: a 5 MiB part takes ~1.25 s, long enough to stop the CLI between parts.
    slow = mesh.env(STREAMIFY_UPLOAD_RATE_LIMIT=str(4 * MiB))
    proc = await mesh.start(str(path), "--parallel", "1", env=slow)

    upload_name = ""
    while proc.returncode is None:  # wait for the first part to be in storage (or the CLI to end)
        if not upload_name and (files := mesh.state_files()):
            upload_name = json.loads(files[0].read_text()).get("upload", "")
        if upload_name and await mesh.held_parts(upload_name) >= 1:
            break
        await asyncio.sleep(0.05)
    assert proc.returncode is None, (await proc.stderr.read()).decode()
    proc.send_signal(sig)
    _, err = await proc.communicate()
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "run the same command again to resume" in err.decode()
    else:
        assert proc.returncode == -signal.SIGKILL
    [state] = mesh.state_files()  # kept for the next run
    assert json.loads(state.read_text())["upload"] == upload_name

    code, out, err = await mesh.run(str(path), "--parallel", "1", "--json")
    assert code == 0, err
    result = json.loads(out)
    reused = result["parts_reused"]
    assert result["upload"] == upload_name and result["resumed"]
    assert f"resuming: {reused} of 3 parts already uploaded" in err
    assert 1 <= reused < 3 and result["parts_sent"] == 3 - reused  # only the missing parts were PUT
    upload = await mesh.upload(upload_name)
    assert upload.state == api.UploadState.UPLOAD_STATE_COMPLETED
    assert mesh.stored_sha256(upload) == sha
    await mesh.until_status(upload.video, VideoStatus.VIDEO_STATUS_UPLOADED)
    assert not mesh.state_files()


async def killed_after_create(mesh, path: Path) -> str:
    """Starts a slow upload of `path`, SIGKILLs it once its upload exists; the upload's name."""
    proc = await mesh.start(
        str(path), "--parallel", "1", env=mesh.env(STREAMIFY_UPLOAD_RATE_LIMIT=str(4 * MiB))
    )
    upload_name = ""
    while proc.returncode is None and not upload_name:
        if files := mesh.state_files():
            upload_name = json.loads(files[0].read_text()).get("upload", "")
        await asyncio.sleep(0.05)
    proc.kill()
    _, err = await proc.communicate()
    assert upload_name, err.decode()
    return upload_name


async def test_an_aborted_upload_is_started_over(mesh, tmp_path):
    path, sha = video_file(tmp_path / "again.mp4", MULTIPART_SIZE)
    upload_name = await killed_after_create(mesh, path)
    await mesh.uploads.AbortUpload(api.AbortUploadRequest(name=upload_name), metadata=ALICE)

    code, out, err = await mesh.run(str(path), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["upload"] != upload_name and not result["resumed"] and "starting over" in err
    assert mesh.stored_sha256(await mesh.upload(result["upload"])) == sha


async def test_a_file_changed_since_the_interrupted_run_is_uploaded_anew(mesh, tmp_path):
    path, _ = video_file(tmp_path / "edit.mp4", MULTIPART_SIZE)
    old_name = await killed_after_create(mesh, path)
    path, sha = video_file(path, MULTIPART_SIZE + 1000)  # edited: the old upload cannot be finished

    code, out, err = await mesh.run(str(path), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["upload"] != old_name and not result["resumed"]
    assert f"changed since {old_name} was started; aborting that upload" in err
    assert (
        await mesh.upload(old_name)
    ).state == api.UploadState.UPLOAD_STATE_ABORTED  # frees the quota
    assert mesh.stored_sha256(await mesh.upload(result["upload"])) == sha
    assert not mesh.state_files()


# --- following transcoding (--wait) ------------------------------------------------------------


async def read_until(stream: asyncio.StreamReader, text: str, seen: list[str]) -> str:
    while line := (await stream.readline()).decode():
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"{text!r} never came; got {seen}")


async def test_wait_follows_transcoding_until_ready(mesh, tmp_path):
    path, _ = video_file(tmp_path / "show.mp4", 20_000)
    proc = await mesh.start(str(path), "--wait")
    out_lines: list[str] = []
    err_lines: list[str] = []
    video_name = (await read_until(proc.stdout, "video: ", out_lines)).split(": ", 1)[1].strip()
    await mesh.until_status(video_name, VideoStatus.VIDEO_STATUS_UPLOADED)
    await read_until(proc.stderr, "UPLOADED", err_lines)
    await mesh.set_status(
        video_name,
        VideoStatus.VIDEO_STATUS_PROCESSING,
        progress=Progress(completed_tasks=3, total_tasks=9, stage="encode"),
    )
    await read_until(proc.stderr, "PROCESSING 3/9 tasks (encode)", err_lines)
    await mesh.set_status(
        video_name,
        VideoStatus.VIDEO_STATUS_READY,
        result=meta.ProcessingResult(manifest_path=f"{video_name}/master.m3u8"),
    )
    rest, _ = await proc.communicate()
    assert proc.returncode == 0, err_lines
    out = "".join(out_lines) + rest.decode()
    assert "status: READY" in out
    # private (the default): the URL carries the video's grant in its path
    playback = re.search(r"^playback: (\S+)$", out, re.M).group(1)
    assert re.fullmatch(
        rf"{re.escape(mesh.settings.cdn_base_url)}/{video_name}/grant\.\d+\.[\w-]+/master\.m3u8",
        playback,
    ), playback


@pytest.mark.parametrize(
    "visibility, expected",
    [
        ("public", Visibility.VISIBILITY_PUBLIC),
        ("unlisted", Visibility.VISIBILITY_UNLISTED),
        (None, Visibility.VISIBILITY_PRIVATE),
    ],
)
async def test_visibility_is_chosen_at_upload(mesh, tmp_path, visibility, expected):
    path, _ = video_file(tmp_path / f"seen-{visibility}.mp4", 20_000)
    args = [str(path)] + (["--visibility", visibility] if visibility else [])
    code, out, err = await mesh.run(*args)
    assert code == 0, err
    name = re.search(r"^video: (\S+)$", out, re.M).group(1)
    video = await mesh.videos.GetVideo(meta.GetVideoRequest(name=name), metadata=ALICE)
    assert video.visibility == expected


async def test_an_unknown_visibility_is_a_usage_error(mesh, tmp_path):
    path, _ = video_file(tmp_path / "hidden.mp4", 20_000)
    code, _, err = await mesh.run(str(path), "--visibility", "secret")
    assert code == 2 and "--visibility" in err and "private" in err


async def test_wait_exits_4_when_transcoding_fails(mesh, tmp_path):
    path, _ = video_file(tmp_path / "broken.mp4", 20_000)
    proc = await mesh.start(str(path), "--wait", "--json")
    videos: list[str] = []  # --json prints only at the end: find the video through the Metadata API
    while not videos:
        listed = await mesh.videos.ListVideos(meta.ListVideosRequest(), metadata=ALICE)
        videos = [v.name for v in listed.videos]
        await asyncio.sleep(0.05)
    [video_name] = videos
    await mesh.until_status(video_name, VideoStatus.VIDEO_STATUS_UPLOADED)
    await mesh.set_status(
        video_name, VideoStatus.VIDEO_STATUS_FAILED, failure_reason="no video stream in the file"
    )
    out, err = await proc.communicate()
    assert proc.returncode == 4, err.decode()
    result = json.loads(out)
    assert (result["video"], result["video_status"]) == (video_name, "FAILED")
    assert result["failure_reason"] == "no video stream in the file" and result["exit_code"] == 4
    assert "no video stream in the file" in err.decode()


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size", "message"),
    [
        ("missing.mp4", None, "no such file"),
        ("empty.mp4", 0, "the file is empty"),
        ("notes.txt", 100, "not a video"),
        ("photo.png", 100, "not a video"),
    ],
)
async def test_bad_input_exits_2_before_contacting_anything(tmp_path, name, size, message):
    path = tmp_path / name
    if size is not None:
        path.write_bytes(b"x" * size)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
    env.update(
        STREAMIFY_UPLOAD_TARGET=f"127.0.0.1:{free_port()}",
        STREAMIFY_UPLOAD_STATE_DIR=str(tmp_path / "s"),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streamify.cli",
        "upload",
        str(path),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 2 and message in err.decode() and not out
    assert not (tmp_path / ".streamify").exists()  # no dev key minted for a command that cannot run


async def test_a_file_over_the_limit_is_refused_with_the_servers_reason(mesh, tmp_path):
    path = tmp_path / "huge.mp4"
    with path.open("wb") as f:
        f.truncate(65 * MiB)  # sparse: nothing is read before the server refuses
    code, out, err = await mesh.run(str(path))
    assert code == 3 and not out
    assert "INVALID_ARGUMENT" in err and "[FILE_TOO_LARGE]" in err
    assert "size_bytes: the file is 65.0 MiB; the largest upload accepted is 64.0 MiB" in err
    assert not (await mesh.videos.ListVideos(meta.ListVideosRequest(), metadata=ALICE)).videos


async def test_a_bad_token_is_refused_with_exit_3(mesh, tmp_path):
    path, _ = video_file(tmp_path / "a.mp4", 1000)
    code, _, err = await mesh.run(str(path), env=mesh.env(STREAMIFY_TOKEN="not-a-jwt"))
    assert code == 3 and "UNAUTHENTICATED" in err and "[TOKEN_INVALID]" in err


async def test_an_unreachable_server_is_reported_clearly(tmp_path):
    path, _ = video_file(tmp_path / "a.mp4", 1000)
    target = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
    env.update(STREAMIFY_UPLOAD_STATE_DIR=str(tmp_path / "s"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streamify.cli",
        "upload",
        str(path),
        "--server",
        target,
        "--token",
        "t",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 1
    assert f"cannot reach the Upload service at {target}" in err.decode()
