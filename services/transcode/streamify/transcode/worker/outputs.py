"""The worker's side of a task's storage: the task process itself holds no credentials.

A task process parses an untrusted file, so it gets nothing that opens anything else: no
signing key, no storage keys, no database URL. The worker, before starting it, signs a GET
URL for the task's source (the only object it may read); after it, the worker reads the list
of outputs the task left in its directory (:data:`MANIFEST`), checks that each is a file
inside that directory going to a key under the task's own output prefix, and uploads them with
its credentials. A task process that names anything else wrote nothing anywhere.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from streamify.transcode.worker import convert as conv
from streamify.v1 import worker_service_pb2 as pb

MANIFEST = "outputs.json"  # in the task's directory: what the task process asks us to upload
SOURCE_URL_TTL = 6 * 3600  # the source URL a task process reads (the longest task, with room)
UPLOAD_THREADS = 4


class StorageError(Exception):
    """Signing the source's URL or writing the outputs to object storage failed."""


class ManifestError(Exception):
    """The task process asked for an upload it may not make (outside its directory or its
    output prefix): it is broken or the file it parsed took it over."""


# --- the task process's side: what it writes -----------------------------------------------


def write_manifest(workdir: Path, uploads: Sequence[conv.Upload]) -> None:
    """Called in the task process: the outputs for the worker to upload, paths relative to
    ``workdir``."""
    entries = [
        {
            "path": os.path.relpath(u.path, workdir),
            "key": u.key,
            "content_type": u.content_type,
            "cache_control": u.cache_control,
        }
        for u in uploads
    ]
    (workdir / MANIFEST).write_text(json.dumps(entries))


# --- the worker's side ----------------------------------------------------------------------


def source_of(assignment: pb.TaskAssignment) -> pb.SourceRef | None:
    """What the task reads (every kind of task has one source)."""
    kind = conv.spec_kind(assignment)
    source: pb.SourceRef | None = getattr(assignment, kind).source if kind else None
    return source


def output_of(assignment: pb.TaskAssignment) -> pb.OutputRef | None:
    """Where the task's outputs go (a probe has none)."""
    kind = conv.spec_kind(assignment)
    spec = getattr(assignment, kind) if kind else None
    if spec is None or "output" not in spec.DESCRIPTOR.fields_by_name:
        return None
    output: pb.OutputRef = spec.output
    return output


def needs_signing(assignment: pb.TaskAssignment) -> bool:
    source = source_of(assignment)
    return source is not None and not source.url and bool(source.bucket and source.key)


def sign_source(assignment: pb.TaskAssignment, client: Any) -> None:
    """Give the assignment's source a pre-signed GET URL (in place)."""
    source = source_of(assignment)
    assert source is not None
    try:
        source.url = client.generate_presigned_url(
            "get_object",
            Params={"Bucket": source.bucket, "Key": source.key},
            ExpiresIn=SOURCE_URL_TTL,
        )
    except Exception as exc:
        raise StorageError(f"could not sign a URL for the source: {_message(exc)}") from exc


def read_manifest(workdir: Path, output: pb.OutputRef | None) -> list[conv.Upload]:
    """The uploads the task process asked for, each checked. Raises ManifestError."""
    path = workdir / MANIFEST
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text())
        assert isinstance(entries, list)
    except (ValueError, AssertionError, OSError):
        raise ManifestError("its list of outputs is unreadable") from None
    if entries and (output is None or not output.bucket or not output.prefix):
        raise ManifestError("it has outputs but its task has no output prefix")
    root = workdir.resolve()
    uploads = []
    for entry in entries:
        try:
            relative, key = str(entry["path"]), str(entry["key"])
            content_type, cache_control = str(entry["content_type"]), str(entry["cache_control"])
        except (KeyError, TypeError):
            raise ManifestError("an entry of its list of outputs is incomplete") from None
        assert output is not None
        file = (root / relative).resolve()
        if not file.is_relative_to(root) or file == root / MANIFEST or not file.is_file():
            raise ManifestError(f"output {relative!r} is not a file in its own directory")
        if not key.startswith(output.prefix) or "/../" in f"/{key}/" or "//" in key:
            raise ManifestError(f"output key {key!r} is outside its prefix {output.prefix!r}")
        uploads.append(conv.Upload(str(file), key, content_type, cache_control))
    return uploads


def _message(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return f"{err.get('Code', 'error')} (HTTP {status}): {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def upload_all(
    client: Any,
    bucket: str,
    uploads: Sequence[conv.Upload],
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """PUT every file (a re-run overwrites the same keys). Raises StorageError."""
    if not uploads:
        return
    total = sum(os.path.getsize(u.path) for u in uploads) or 1
    done = 0
    lock = threading.Lock()

    def put(upload: conv.Upload) -> None:
        nonlocal done
        with open(upload.path, "rb") as body:
            client.put_object(
                Bucket=bucket,
                Key=upload.key,
                Body=body,
                ContentType=upload.content_type,
                CacheControl=upload.cache_control,
            )
        with lock:
            done += os.path.getsize(upload.path)
            fraction = done / total
        if on_progress is not None:
            on_progress(fraction)

    with cf.ThreadPoolExecutor(max_workers=min(UPLOAD_THREADS, len(uploads))) as pool:
        futures = [pool.submit(put, u) for u in uploads]
        try:
            for future in cf.as_completed(futures):
                future.result()
        except Exception as exc:
            for future in futures:
                future.cancel()
            raise StorageError(
                f"could not write the outputs to bucket {bucket}: {_message(exc)}"
            ) from exc
