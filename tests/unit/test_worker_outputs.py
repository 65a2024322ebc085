"""The worker uploads only what a task process may write: files of its own directory, to keys
under its own output prefix. A task process taken over by the file it parses can ask for
anything; the worker refuses every upload outside those bounds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from streamify.transcode.worker import convert as conv
from streamify.transcode.worker import outputs
from streamify.v1 import worker_service_pb2 as pb

pytestmark = pytest.mark.unit

PREFIX = "videos/abc/"
OUTPUT = pb.OutputRef(bucket="media", prefix=PREFIX)


def _task_dir(tmp_path: Path) -> Path:
    workdir = tmp_path / "task-1"
    (workdir / "out" / "720p").mkdir(parents=True)
    (workdir / "out" / "720p" / "init.mp4").write_bytes(b"init")
    return workdir


def _entry(path: str, key: str) -> dict[str, str]:
    return {"path": path, "key": key, "content_type": "video/mp4", "cache_control": "public"}


def test_what_the_task_lists_is_uploaded_from_its_directory(tmp_path):
    workdir = _task_dir(tmp_path)
    file = workdir / "out" / "720p" / "init.mp4"
    outputs.write_manifest(
        workdir, [conv.Upload(str(file), f"{PREFIX}720p/init.mp4", "video/mp4", "public")]
    )
    (upload,) = outputs.read_manifest(workdir, OUTPUT)
    assert Path(upload.path) == file.resolve()
    assert (upload.key, upload.content_type, upload.cache_control) == (
        f"{PREFIX}720p/init.mp4",
        "video/mp4",
        "public",
    )


def test_no_manifest_means_nothing_to_upload(tmp_path):
    assert outputs.read_manifest(_task_dir(tmp_path), None) == []


@pytest.mark.parametrize(
    ("entry", "phrase"),
    [
        (_entry("../../etc/passwd", f"{PREFIX}x"), "not a file in its own directory"),
        (_entry("/etc/passwd", f"{PREFIX}x"), "not a file in its own directory"),
        (_entry("out", f"{PREFIX}x"), "not a file in its own directory"),  # a directory
        (_entry("out/720p/missing.m4s", f"{PREFIX}x"), "not a file in its own directory"),
        (_entry("outputs.json", f"{PREFIX}x"), "not a file in its own directory"),
        (_entry("out/720p/init.mp4", "videos/other/720p/init.mp4"), "outside its prefix"),
        (_entry("out/720p/init.mp4", f"{PREFIX}../other/init.mp4"), "outside its prefix"),
        (_entry("out/720p/init.mp4", f"{PREFIX}720p/.."), "outside its prefix"),
        (_entry("out/720p/init.mp4", "sources/abc/upload"), "outside its prefix"),
        ({"path": "out/720p/init.mp4"}, "incomplete"),
    ],
)
def test_an_upload_outside_the_task_is_refused(tmp_path, entry, phrase):
    workdir = _task_dir(tmp_path)
    (workdir / outputs.MANIFEST).write_text(json.dumps([entry]))
    with pytest.raises(outputs.ManifestError, match=phrase):
        outputs.read_manifest(workdir, OUTPUT)


def test_a_symlink_out_of_the_directory_is_refused(tmp_path):
    workdir = _task_dir(tmp_path)
    secret = tmp_path / "worker-credentials"
    secret.write_text("s3cr3t")
    os.symlink(secret, workdir / "out" / "720p" / "seg_00001.m4s")
    (workdir / outputs.MANIFEST).write_text(
        json.dumps([_entry("out/720p/seg_00001.m4s", f"{PREFIX}720p/seg_00001.m4s")])
    )
    with pytest.raises(outputs.ManifestError, match="not a file in its own directory"):
        outputs.read_manifest(workdir, OUTPUT)


@pytest.mark.parametrize("text", ["{not json", '{"path": "x"}', "[1]"])
def test_an_unreadable_manifest_is_refused(tmp_path, text):
    workdir = _task_dir(tmp_path)
    (workdir / outputs.MANIFEST).write_text(text)
    with pytest.raises(outputs.ManifestError):
        outputs.read_manifest(workdir, OUTPUT)


def test_outputs_without_a_prefix_to_go_to_are_refused(tmp_path):
    workdir = _task_dir(tmp_path)
    (workdir / outputs.MANIFEST).write_text(json.dumps([_entry("out/720p/init.mp4", "x")]))
    with pytest.raises(outputs.ManifestError, match="no output prefix"):
        outputs.read_manifest(workdir, None)


def test_an_assignment_without_signed_storage_access_is_refused_with_the_reason():
    source = pb.SourceRef(bucket="b", key="k", url="https://s/k?sig")
    policy = pb.UploadPolicy(url="https://s/media", fields={"policy": "p"})
    output = pb.OutputRef(bucket="m", prefix="videos/v/", policy=policy)

    def chunk(source, output):
        return pb.TaskAssignment(video_chunk=pb.VideoChunkSpec(source=source, output=output))

    assert outputs.missing_access(chunk(source, output)) is None
    assert outputs.missing_access(pb.TaskAssignment(probe=pb.ProbeSpec(source=source))) is None
    unsigned = pb.SourceRef(bucket="b", key="k")
    assert "source" in outputs.missing_access(chunk(unsigned, output))
    no_policy = pb.OutputRef(bucket="m", prefix="videos/v/")
    assert "outputs" in outputs.missing_access(chunk(source, no_policy))
