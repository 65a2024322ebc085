"""The worker's side of a task's storage. Neither the worker nor its task process holds
storage credentials.

A task process parses an untrusted file, so it gets nothing that opens anything else: no
signing key, no storage access of its own, no database URL. Its assignment carries what the
orchestrator signed for it (`orchestrator/task_urls.py`): a GET URL for its source (the only
object it reads) and a POST policy for keys under its output prefix. After the task process
ends, the worker reads the list of outputs it left in its directory (:data:`MANIFEST`), checks
that each is a file inside that directory going to a key under the task's output prefix, and
POSTs them with the policy (which storage checks again). A task process that names anything
else wrote nothing anywhere.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import urllib3

from streamify.transcode.worker import convert as conv
from streamify.v1 import worker_service_pb2 as pb

MANIFEST = "outputs.json"  # in the task's directory: what the task process asks us to upload
UPLOAD_THREADS = 4
UPLOAD_TIMEOUT = urllib3.Timeout(connect=10, read=120)
# a POST of a whole file to one key is idempotent, so every failure is worth a retry
RETRIES = urllib3.Retry(
    total=3, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504), allowed_methods=None
)


class StorageError(Exception):
    """Writing the outputs to object storage failed."""


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


def missing_access(assignment: pb.TaskAssignment) -> str | None:
    """Why the assignment cannot be run without storage credentials, or None."""
    source = source_of(assignment)
    if source is not None and not source.url:
        return "the assignment carries no signed URL for its source"
    output = output_of(assignment)
    if output is not None and not output.policy.url:
        return "the assignment carries no upload policy for its outputs"
    return None


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


def _storage_error(response: urllib3.BaseHTTPResponse) -> str:
    """`Code (HTTP n): Message` from an S3 error body."""
    body = response.data.decode("utf-8", "replace")
    code = re.search(r"<Code>(.*?)</Code>", body)
    message = re.search(r"<Message>(.*?)</Message>", body)
    return (
        f"{code.group(1) if code else 'error'} (HTTP {response.status}): "
        f"{message.group(1) if message else body[:200]}"
    ).strip()


def upload_all(
    policy: pb.UploadPolicy,
    uploads: Sequence[conv.Upload],
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """POST every file with the policy (a re-run overwrites the same keys). Raises
    StorageError."""
    if not uploads:
        return
    total = sum(os.path.getsize(u.path) for u in uploads) or 1
    done = 0
    lock = threading.Lock()
    http = urllib3.PoolManager(maxsize=UPLOAD_THREADS, retries=RETRIES, timeout=UPLOAD_TIMEOUT)

    def post(upload: conv.Upload) -> None:
        nonlocal done
        data = Path(upload.path).read_bytes()
        fields: dict[str, str | tuple[str, bytes, str]] = {
            **policy.fields,
            "key": upload.key,
            "Content-Type": upload.content_type,
            "Cache-Control": upload.cache_control,
            "file": (
                os.path.basename(upload.path),
                data,
                upload.content_type,
            ),  # last: S3 ignores what follows
        }
        response = http.request("POST", policy.url, fields=fields)
        if response.status not in (200, 201, 204):
            raise StorageError(f"storage refused {upload.key}: {_storage_error(response)}")
        with lock:
            done += len(data)
            fraction = done / total
        if on_progress is not None:
            on_progress(fraction)

    with cf.ThreadPoolExecutor(max_workers=min(UPLOAD_THREADS, len(uploads))) as pool:
        futures = [pool.submit(post, u) for u in uploads]
        try:
            for future in cf.as_completed(futures):
                future.result()
        except Exception as exc:
            for future in futures:
                future.cancel()
            if isinstance(exc, StorageError):
                raise StorageError(f"could not write the outputs: {exc}") from exc
            raise StorageError(f"could not write the outputs: {type(exc).__name__}: {exc}") from exc
