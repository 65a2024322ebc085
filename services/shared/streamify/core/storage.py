"""Object storage over the S3 API: AWS S3 at scale, the embedded SeaweedFS on one machine.

Video bytes never pass through the services: browsers and CLIs PUT/GET them with pre-signed
URLs. SigV4 signs the Host header, so URLs handed to clients must be signed for the host the
client will actually connect to (`public=True`, settings.s3.public_endpoint_url); a proxy in
between must forward that Host unchanged.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from streamify.core import dev_keys
from streamify.core.config import Settings
from streamify.core.errors import ConfigurationError

if TYPE_CHECKING:  # the boto3-stubs type where installed (re-exported for the services)
    from mypy_boto3_s3 import S3Client as S3Client
else:
    S3Client = Any

DEV_S3_CREDENTIALS_FILE = "dev-s3-credentials"


def s3_credentials(settings: Settings) -> tuple[str, str] | None:
    """The configured key pair; in embedded mode without one, a development pair kept in
    ``data_dir/dev-s3-credentials`` (shared by SeaweedFS and every local process); otherwise
    None, which lets boto3 find credentials itself (environment, IRSA on EKS, ...)."""
    key_id, secret = settings.s3.access_key_id, settings.s3.secret_access_key
    if key_id is not None and secret is not None:
        return key_id.get_secret_value(), secret.get_secret_value()
    if (key_id is None) != (secret is None):
        raise ConfigurationError(
            "set both STREAMIFY_S3_ACCESS_KEY_ID and STREAMIFY_S3_SECRET_ACCESS_KEY, or neither"
        )
    if settings.embedded:
        return _load_or_create_dev_credentials(Path(settings.data_dir) / DEV_S3_CREDENTIALS_FILE)
    return None


def _load_or_create_dev_credentials(path: Path) -> tuple[str, str]:
    text = dev_keys.load_or_create(
        path, lambda: f"DEV{secrets.token_hex(8).upper()} {secrets.token_urlsafe(30)}".encode()
    ).decode()
    parts = text.split()
    if len(parts) != 2:
        raise ConfigurationError(
            f"development S3 credentials {path} are malformed; delete the file"
        )
    return parts[0], parts[1]


def s3_endpoint(settings: Settings) -> str | None:
    """settings.s3.endpoint_url; embedded mode without one: the embedded SeaweedFS;
    otherwise None (AWS S3 of s3_region)."""
    if settings.s3.endpoint_url:
        return settings.s3.endpoint_url
    if settings.embedded:
        return f"http://127.0.0.1:{settings.seaweedfs.port}"
    return None


def make_s3_client(settings: Settings, *, public: bool = False) -> S3Client:
    """A SigV4 boto3 S3 client. `public=True`: for pre-signing URLs that browsers and CLIs
    use (signed for s3_public_endpoint_url); never use that one for server-side calls."""
    endpoint = s3_endpoint(settings)
    if public and settings.s3.public_endpoint_url:
        endpoint = settings.s3.public_endpoint_url
    kwargs: dict[str, Any] = {}
    if (creds := s3_credentials(settings)) is not None:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = creds
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": settings.s3.addressing_style},
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=settings.s3.region, config=config, **kwargs
    )


def make_cloudfront_client() -> Any:
    """A CloudFront client with boto3's own credential chain (IRSA on EKS)."""
    return boto3.client(
        "cloudfront", config=Config(retries={"max_attempts": 5, "mode": "standard"})
    )


def ensure_buckets(client: S3Client, *names: str) -> None:
    """Create the buckets that do not exist yet (safe to call on every start)."""
    for name in names:
        try:
            client.head_bucket(Bucket=name)
            continue
        except ClientError as e:
            if _status(e) not in (404, 400):
                raise
        kwargs: dict[str, Any] = {}
        region = client.meta.region_name
        if region and region != "us-east-1":  # AWS rejects an explicit us-east-1 constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            client.create_bucket(Bucket=name, **kwargs)
        except ClientError as e:
            if _code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


def object_size(client: S3Client, bucket: str, key: str) -> int | None:
    """Size in bytes of an object, or None if there is no such object."""
    try:
        return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as e:
        if _status(e) == 404 or _code(e) in ("NoSuchKey", "NotFound", "404"):
            return None
        raise


def _status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))
