"""The object-storage operations the Upload service needs, over boto3.

Two clients: `internal` talks to storage from inside the mesh; `public` only signs URLs, with
the endpoint clients can reach (they differ behind NAT or in Kubernetes; locally they are the
same SeaweedFS). Signing is local computation, no network round trip.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from botocore.exceptions import ClientError

from streamify.core.storage import S3Client, object_size

HASH_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StoredPart:
    number: int
    size: int
    etag: str


class UploadStorage:
    def __init__(
        self, internal: S3Client, public: S3Client, bucket: str, url_ttl_seconds: int
    ) -> None:
        self._s3 = internal
        self._signer = public
        self.bucket = bucket
        self._ttl = url_ttl_seconds

    def sign_put(
        self, key: str, content_type: str, size: int, sha256: str = ""
    ) -> tuple[str, dict[str, str]]:
        """A PUT URL and the headers it must carry. With a declared SHA-256 the checksum header
        is signed in, so storage itself refuses other bytes (BadDigest)."""
        params: dict[str, object] = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": size,
        }
        headers = {"Content-Type": content_type}
        if sha256:
            checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
            params["ChecksumSHA256"] = checksum
            headers["x-amz-checksum-sha256"] = checksum
        url = self._signer.generate_presigned_url("put_object", Params=params, ExpiresIn=self._ttl)
        return url, headers

    def start_multipart(self, key: str, content_type: str) -> str:
        reply = self._s3.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type
        )
        upload_id: str = reply["UploadId"]
        return upload_id

    def sign_part(self, key: str, upload_id: str, number: int, size: int) -> str:
        url: str = self._signer.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": number,
                "ContentLength": size,
            },
            ExpiresIn=self._ttl,
        )
        return url

    def list_parts(self, key: str, upload_id: str) -> list[StoredPart] | None:
        """Every part storage holds, or None when storage no longer knows the upload."""
        parts: list[StoredPart] = []
        marker = 0
        while True:
            try:
                reply = self._s3.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] in {"NoSuchUpload", "404"}:
                    return None
                raise
            parts += [
                StoredPart(p["PartNumber"], p["Size"], p["ETag"]) for p in reply.get("Parts", [])
            ]
            if not reply.get("IsTruncated"):
                return parts
            marker = int(reply["NextPartNumberMarker"])

    def complete_multipart(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        self._s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]},
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in {"NoSuchUpload", "404"}:
                raise

    def seal(self, incoming: str, sealed: str) -> None:
        """Copies `incoming` to `sealed` inside storage unless `sealed` already exists (a
        conditional copy: nothing ever overwrites a sealed object). Without an incoming object
        it does nothing: the check of the sealed key that follows says what is there."""
        try:
            self._s3.copy_object(
                Bucket=self.bucket,
                Key=sealed,
                CopySource={"Bucket": self.bucket, "Key": incoming},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            # sealed by an earlier attempt (that copy is the one checked), or nothing to copy
            if exc.response["Error"]["Code"] not in {
                "PreconditionFailed",
                "412",
                "NoSuchKey",
                "404",
            }:
                raise

    def sha256_of(self, key: str) -> str:
        """Lowercase hex SHA-256 of the stored object, read as a stream."""
        digest = hashlib.sha256()
        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(HASH_CHUNK_BYTES):
            digest.update(chunk)
        return digest.hexdigest()

    def keys_under(self, prefix: str) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents") or []:
                yield obj["Key"]

    def size_of(self, key: str) -> int | None:
        return object_size(self._s3, self.bucket, key)

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=key)
