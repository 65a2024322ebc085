"""A worker holds no storage credentials: what a task's assignment carries (signed by the
orchestrator, `orchestrator/task_urls.py`) opens that task's source for reading and its output
prefix for writing, within a size, until it expires, and nothing else. A stolen assignment is
tried against a real SeaweedFS, using the worker's own upload code where it can."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from streamify.core.config import Settings
from streamify.core.storage import make_s3_client
from streamify.transcode.orchestrator import task_urls
from streamify.transcode.worker import convert as conv
from streamify.transcode.worker import outputs
from streamify.v1 import worker_service_pb2 as pb

pytestmark = pytest.mark.security
MAX_BYTES = 10_000


@pytest.fixture(scope="module")
def s3(seaweedfs):
    return make_s3_client(Settings(**seaweedfs.settings_overrides()))  # type: ignore[arg-type]


def signed_output(s3, seaweedfs, ttl: int = 600) -> pb.OutputRef:
    out = pb.OutputRef(bucket=seaweedfs.media_bucket, prefix=f"videos/{uuid.uuid4().hex[:12]}/")
    task_urls.sign_output(s3, out, ttl, MAX_BYTES)
    return out


def post(policy: pb.UploadPolicy, key: str, data: bytes) -> requests.Response:
    fields = {**policy.fields, "key": key, "Content-Type": "video/mp4", "Cache-Control": "x"}
    return requests.post(policy.url, data=fields, files={"file": ("f", data)}, timeout=30)


def exists(s3, bucket: str, key: str) -> bool:
    return s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) > 0


def test_the_worker_writes_its_outputs_with_the_policy_alone(s3, seaweedfs, tmp_path):
    out = signed_output(s3, seaweedfs)
    file = tmp_path / "seg.m4s"
    file.write_bytes(b"\0" * 1000)
    upload = conv.Upload(str(file), f"{out.prefix}720p/seg_00001.m4s", "video/iso.segment", "c")
    outputs.upload_all(out.policy, [upload])
    head = s3.head_object(Bucket=out.bucket, Key=upload.key)
    assert (head["ContentLength"], head["ContentType"], head["CacheControl"]) == (
        1000,
        "video/iso.segment",
        "c",
    )


@pytest.mark.parametrize(
    "where",
    [
        "another video's prefix",
        "a prefix that only starts like its own",
        "the bucket's root",
    ],
)
def test_a_stolen_policy_writes_nowhere_but_its_own_prefix(s3, seaweedfs, where):
    out = signed_output(s3, seaweedfs)
    key = {
        "another video's prefix": f"videos/{uuid.uuid4().hex[:12]}/master.m3u8",
        "a prefix that only starts like its own": out.prefix.rstrip("/") + "x/master.m3u8",
        "the bucket's root": "master.m3u8",
    }[where]
    assert post(out.policy, key, b"#EXTM3U\n").status_code == 403
    assert not exists(s3, out.bucket, key)


def test_a_stolen_policy_cannot_write_the_uploads_bucket(s3, seaweedfs):
    out = signed_output(s3, seaweedfs)
    other = out.policy.url.rsplit("/", 1)[0] + "/" + seaweedfs.uploads_bucket
    key = f"{out.prefix}x"
    stolen = pb.UploadPolicy(url=other, fields=dict(out.policy.fields))
    assert post(stolen, key, b"x").status_code in (400, 403)
    assert not exists(s3, seaweedfs.uploads_bucket, key)


def test_a_policy_refuses_an_object_over_its_size_limit(s3, seaweedfs, tmp_path):
    out = signed_output(s3, seaweedfs)
    file = tmp_path / "big.m4s"
    file.write_bytes(b"\0" * (MAX_BYTES + 1))
    upload = conv.Upload(str(file), f"{out.prefix}big.m4s", "video/iso.segment", "c")
    with pytest.raises(outputs.StorageError, match="EntityTooLarge"):
        outputs.upload_all(out.policy, [upload])
    assert not exists(s3, out.bucket, upload.key)


def test_an_expired_policy_writes_nothing(s3, seaweedfs):
    out = signed_output(s3, seaweedfs, ttl=1)
    time.sleep(2)
    assert post(out.policy, f"{out.prefix}late.m4s", b"x").status_code == 403
    assert not exists(s3, out.bucket, f"{out.prefix}late.m4s")


def test_a_policy_is_no_read_credential(s3, seaweedfs):
    out = signed_output(s3, seaweedfs)
    key = f"{out.prefix}secret.m4s"
    s3.put_object(Bucket=out.bucket, Key=key, Body=b"secret")
    bucket_url = out.policy.url
    assert (
        requests.get(f"{bucket_url}/{key}", params=dict(out.policy.fields), timeout=30).status_code
        == 403
    )
    assert requests.delete(f"{bucket_url}/{key}", timeout=30).status_code == 403
    assert s3.get_object(Bucket=out.bucket, Key=key)["Body"].read() == b"secret"


def test_an_output_prefix_that_does_not_end_a_path_is_never_signed(s3, seaweedfs):
    out = pb.OutputRef(bucket=seaweedfs.media_bucket, prefix="videos/abc")  # would cover abcd/
    with pytest.raises(ValueError, match="must end with '/'"):
        task_urls.sign_output(s3, out, 600, MAX_BYTES)
