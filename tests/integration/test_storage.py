"""Object storage against a real SeaweedFS with signatures enforced: what the Upload service
relies on when it hands pre-signed URLs to browsers."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from streamify.core.config import Settings
from streamify.core.storage import ensure_buckets, make_s3_client, object_size

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(seaweedfs) -> Settings:
    return Settings(**seaweedfs.settings_overrides())


@pytest.fixture(scope="module")
def s3(settings):
    return make_s3_client(settings)


@pytest.fixture
def key() -> str:
    return f"raw/{uuid.uuid4().hex}"


def _put_url(s3, bucket: str, key: str, expires: int = 60, **params) -> str:
    return s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": key, **params}, ExpiresIn=expires
    )


def _error_code(response: requests.Response) -> str:
    return response.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in response.text else ""


def test_ensure_buckets_is_idempotent(s3, settings):
    ensure_buckets(s3, settings.uploads_bucket, settings.media_bucket)
    ensure_buckets(s3, settings.uploads_bucket)
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {settings.uploads_bucket, settings.media_bucket} <= names


def test_presigned_put_round_trip(s3, settings, key):
    body = b"\x00\x01video bytes" * 1000
    r = requests.put(_put_url(s3, settings.uploads_bucket, key), data=body, timeout=10)
    assert r.status_code == 200, r.text
    assert object_size(s3, settings.uploads_bucket, key) == len(body)
    get = s3.generate_presigned_url(
        "get_object", Params={"Bucket": settings.uploads_bucket, "Key": key}, ExpiresIn=60
    )
    assert requests.get(get, timeout=10).content == body


def test_object_size_of_missing_object_is_none(s3, settings):
    assert object_size(s3, settings.uploads_bucket, "no/such/object") is None


def test_public_client_signs_for_the_public_host(seaweedfs, key):
    # Browsers reach the store under another name than the services do: the URL must be
    # signed for that host (SigV4 signs Host), and it then works from there.
    public = seaweedfs.endpoint_url.replace("127.0.0.1", "localhost")
    settings = Settings(**seaweedfs.settings_overrides(), s3_public_endpoint_url=public)
    url = _put_url(make_s3_client(settings, public=True), settings.uploads_bucket, key)
    assert url.startswith(public + "/")
    assert requests.put(url, data=b"abc", timeout=10).status_code == 200
    assert object_size(make_s3_client(settings), settings.uploads_bucket, key) == 3


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url, key: url.replace(key, key + "x"),  # another object
        lambda url, key: url.replace("X-Amz-Expires=60", "X-Amz-Expires=600000"),  # longer life
        lambda url, key: url[:-4] + ("0000" if not url.endswith("0000") else "1111"),  # signature
    ],
    ids=["key", "expires", "signature"],
)
def test_tampered_url_is_rejected(s3, settings, key, tamper):
    url = tamper(_put_url(s3, settings.uploads_bucket, key), key)
    r = requests.put(url, data=b"x", timeout=10)
    assert r.status_code == 403
    assert _error_code(r) == "SignatureDoesNotMatch"


def test_wrong_secret_is_rejected(seaweedfs, key):
    settings = Settings(**{**seaweedfs.settings_overrides(), "s3_secret_access_key": "not-it"})
    url = _put_url(make_s3_client(settings), settings.uploads_bucket, key)
    assert requests.put(url, data=b"x", timeout=10).status_code == 403


def test_expired_url_is_rejected(s3, settings, key):
    url = _put_url(s3, settings.uploads_bucket, key, expires=1)
    time.sleep(2)
    r = requests.put(url, data=b"x", timeout=10)
    assert r.status_code == 403
    assert _error_code(r) == "AccessDenied"  # "Request has expired"
    assert object_size(s3, settings.uploads_bucket, key) is None


def test_anonymous_requests_are_rejected(s3, settings, key):
    s3.put_object(Bucket=settings.uploads_bucket, Key=key, Body=b"secret")
    base = f"{settings.s3.endpoint_url}/{settings.uploads_bucket}"
    assert requests.get(f"{base}/{key}", timeout=10).status_code == 403
    assert requests.put(f"{base}/{key}", data=b"overwrite", timeout=10).status_code == 403
    assert requests.get(base, timeout=10).status_code == 403  # listing
    assert s3.get_object(Bucket=settings.uploads_bucket, Key=key)["Body"].read() == b"secret"


def test_signed_content_type_is_enforced(s3, settings, key):
    url = _put_url(s3, settings.uploads_bucket, key, ContentType="video/mp4")
    assert (
        requests.put(url, data=b"x", headers={"Content-Type": "text/html"}, timeout=10).status_code
        == 403
    )
    assert requests.put(url, data=b"x", timeout=10).status_code == 403  # header left out
    assert (
        requests.put(url, data=b"x", headers={"Content-Type": "video/mp4"}, timeout=10).status_code
        == 200
    )
    assert s3.head_object(Bucket=settings.uploads_bucket, Key=key)["ContentType"] == "video/mp4"


def test_signed_content_length_is_enforced(s3, settings, key):
    url = _put_url(s3, settings.uploads_bucket, key, ContentLength=5)
    assert "content-length" in url  # X-Amz-SignedHeaders=content-length;host
    assert requests.put(url, data=b"1234567890", timeout=10).status_code == 403  # larger
    assert requests.put(url, data=b"123", timeout=10).status_code == 403  # smaller
    assert object_size(s3, settings.uploads_bucket, key) is None
    assert requests.put(url, data=b"12345", timeout=10).status_code == 200
    assert object_size(s3, settings.uploads_bucket, key) == 5


def test_multipart_upload_through_presigned_urls(s3, settings, key):
    bucket = settings.uploads_bucket
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="video/mp4")[
        "UploadId"
    ]
    part_size = 5 * 1024 * 1024  # S3's minimum for every part but the last
    parts = [b"a" * part_size, b"b" * part_size, b"tail"]

    def sign(number: int, length: int) -> str:
        return s3.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": number,
                "ContentLength": length,
            },
            ExpiresIn=60,
        )

    # Part 1 sent, then the "browser" goes away; resuming asks the server what it has.
    r = requests.put(sign(1, len(parts[0])), data=parts[0], timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"]
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, part_size)]
    # A part URL signed for one length does not take another.
    assert requests.put(sign(2, len(parts[1])), data=parts[1] + b"!", timeout=30).status_code == 403

    for number, data in enumerate(parts[1:], start=2):
        assert requests.put(sign(number, len(data)), data=data, timeout=30).status_code == 200
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3]

    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in listed]
        },
    )
    assert object_size(s3, bucket, key) == sum(map(len, parts))
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "video/mp4"
    assert s3.get_object(Bucket=bucket, Key=key, Range="bytes=-4")["Body"].read() == b"tail"


def test_abort_multipart_upload(s3, settings, key):
    bucket = settings.uploads_bucket
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"
    assert object_size(s3, bucket, key) is None


def test_browser_cors_without_bucket_configuration(s3, settings, key):
    """SeaweedFS answers CORS for any origin by default (-s3.allowedOrigins=*) and exposes
    ETag, which a browser needs to complete a multipart upload; no put_bucket_cors needed."""
    s3.put_object(Bucket=settings.uploads_bucket, Key=key, Body=b"x")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": settings.uploads_bucket, "Key": key}, ExpiresIn=60
    )
    origin = "http://127.0.0.1:8765"
    r = requests.get(url, headers={"Origin": origin}, timeout=10)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert "ETag" in r.headers["Access-Control-Expose-Headers"]
    preflight = requests.options(
        _put_url(s3, settings.uploads_bucket, key),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]


def test_embedded_mode_defaults(tmp_path):
    """No keys configured in embedded mode: one development pair, created once in data_dir
    (private), shared by every process; the endpoint is the embedded SeaweedFS."""
    from streamify.core.seaweed import SeaweedFS
    from streamify.core.storage import DEV_S3_CREDENTIALS_FILE, s3_credentials, s3_endpoint

    settings = Settings(embedded=True, data_dir=tmp_path, seaweedfs_port=18333)
    pair = s3_credentials(settings)
    assert pair is not None and all(pair)
    assert s3_credentials(Settings(embedded=True, data_dir=tmp_path)) == pair
    assert (tmp_path / DEV_S3_CREDENTIALS_FILE).stat().st_mode & 0o077 == 0
    assert s3_endpoint(settings) == "http://127.0.0.1:18333"
    weed = SeaweedFS.from_settings(settings)
    assert (weed.access_key, weed.secret_key) == pair
    assert weed.endpoint_url == "http://127.0.0.1:18333"
    assert weed.ports.s3_grpc == 28333
    assert s3_credentials(Settings(data_dir=tmp_path)) is None  # not embedded: boto3's chain
    assert s3_endpoint(Settings()) is None
