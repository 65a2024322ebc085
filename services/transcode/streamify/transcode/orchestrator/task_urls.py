"""The storage access a task's assignment carries, so that workers hold no storage credentials.

The orchestrator signs, at the moment it hands a task out:

* a pre-signed GET URL for the task's source (the only object the task reads);
* a pre-signed POST policy for its outputs: the holder may write objects whose key starts
  with the task's output prefix (`videos/{video}/`, ending in a slash so no other video's
  prefix matches), each at most `max_bytes`, with a Content-Type and Cache-Control of its
  choosing, until the policy expires. It opens no read, no delete and no other key.

Both expire after `ttl_seconds`; a retried or reassigned task gets freshly signed ones.
"""

from __future__ import annotations

from typing import Any

from streamify.v1 import worker_service_pb2 as wapi


def sign_source(s3: Any, source: wapi.SourceRef, ttl_seconds: int) -> None:
    source.url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": source.bucket, "Key": source.key},
        ExpiresIn=ttl_seconds,
    )


def sign_output(s3: Any, output: wapi.OutputRef, ttl_seconds: int, max_bytes: int) -> None:
    if not output.prefix.endswith("/"):
        raise ValueError(f"output prefix {output.prefix!r} must end with '/'")
    post = s3.generate_presigned_post(
        output.bucket,
        output.prefix + "${filename}",
        Conditions=[
            ["starts-with", "$key", output.prefix],
            ["content-length-range", 0, max_bytes],
            ["starts-with", "$Content-Type", ""],
            ["starts-with", "$Cache-Control", ""],
        ],
        ExpiresIn=ttl_seconds,
    )
    output.policy.url = post["url"]
    # the key is the worker's to fill in, per file; the policy bounds what it may be
    output.policy.fields.update({k: v for k, v in post["fields"].items() if k != "key"})
