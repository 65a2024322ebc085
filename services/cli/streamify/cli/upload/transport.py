"""Talking to the Upload and Metadata services and to storage: the gRPC calls (retried with
backoff), the pre-signed PUTs of the single file and of the parts (in parallel, streamed from the
file, rate-limited, retried and signed again), and following a video until READY or FAILED."""

from __future__ import annotations

import contextlib
import functools
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import grpc
import requests
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from streamify.cli.upload.errors import (
    ServerRefused,
    TranscodeFailed,
    TransferFailed,
    UploadError,
    _Cancelled,
    _UploadGone,
)
from streamify.cli.upload.progress import Progress, ProgressReporter, describe_video
from streamify.cli.upload.resume import StateStore, UploadStateFile, request_id_for, state_dir
from streamify.cli.upload.source import _Source, inspect_file
from streamify.core import backoff as core_backoff
from streamify.v1 import metadata_service_pb2 as meta_api
from streamify.v1 import metadata_service_pb2_grpc, upload_service_pb2_grpc
from streamify.v1 import upload_service_pb2 as api
from streamify.v1.upload_service_pb2 import UploadState
from streamify.v1.video_pb2 import Video, VideoStatus, Visibility

__all__ = ["UploadResult", "Uploader", "watch_video"]

SIGN_BATCH = 100  # SignParts accepts at most 100 part numbers per call
PUT_ATTEMPTS = 6  # per part (or single PUT), before the upload fails
RESIGNS_PER_PART = 3  # 403 (expired URL) -> sign again, at most this often
RPC_ATTEMPTS = 5  # UNAVAILABLE / DEADLINE_EXCEEDED retries of (idempotent) RPCs
RPC_TIMEOUT_SECONDS = 30.0
WATCH_ATTEMPTS = 20  # consecutive broken WatchVideo streams before giving up
URL_MARGIN_SECONDS = 30  # a signed URL closer than this to its expiry is signed again
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 20.0
RETRYABLE_HTTP = frozenset({408, 429}) | frozenset(range(500, 600))
RETRYABLE_RPC = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
REPAIRABLE = frozenset(
    {"PARTS_MISSING", "PART_SIZE_MISMATCH", "PART_ETAG_MISMATCH", "OBJECT_MISSING", "SIZE_MISMATCH"}
)


# --- pure helpers (unit-tested) ---------------------------------------------------------------


@dataclass(frozen=True)
class PartSlice:
    number: int  # 1-based
    offset: int
    length: int


def part_slices(total_size: int, part_size: int, part_count: int) -> list[PartSlice]:
    """Where each part lies in the file: every part `part_size` bytes, the last one the rest."""
    if total_size <= 0 or part_size <= 0 or part_count <= 0:
        raise ValueError("size, part size and part count must be positive")
    if not (part_count - 1) * part_size < total_size <= part_count * part_size:
        raise ValueError(f"{part_count} parts of {part_size} bytes do not cover {total_size} bytes")
    return [
        PartSlice(n, (n - 1) * part_size, min(part_size, total_size - (n - 1) * part_size))
        for n in range(1, part_count + 1)
    ]


def batches(numbers: Sequence[int], size: int = SIGN_BATCH) -> list[list[int]]:
    """`numbers` in order, cut into lists of at most `size`."""
    if size < 1:
        raise ValueError("batch size must be positive")
    return [list(numbers[i : i + size]) for i in range(0, len(numbers), size)]


# seconds before retry number `attempt` (0-based), with the upload client's base and cap
backoff_delay = functools.partial(
    core_backoff.backoff_delay, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS
)


def s3_error_summary(body: str) -> str:
    """'AccessDenied: Request has expired' from an S3 XML error body (or its first 200 chars)."""
    code = re.search(r"<Code>([^<]*)</Code>", body or "")
    message = re.search(r"<Message>([^<]*)</Message>", body or "")
    if code:
        return code.group(1) + (f": {message.group(1)}" if message else "")
    return (body or "").strip()[:200]


# --- the uploader --------------------------------------------------------------------------------


class RateLimit:
    """Caps the bytes per second all threads send together (STREAMIFY_UPLOAD_RATE_LIMIT)."""

    def __init__(self, bytes_per_second: int) -> None:
        self._rate = bytes_per_second
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now) + n / self._rate
            wait = self._next - now
        if wait > 0:
            time.sleep(wait)


class FileSlice:
    """A read-only stream over bytes [offset, offset + length) of a file, for requests' `data=`:
    it has a length (so requests sends Content-Length, which the URL's signature covers) and is
    read in small blocks, so a part is never held in memory."""

    CHUNK = 256 * 1024

    def __init__(
        self,
        path: Path,
        offset: int,
        length: int,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        limit: RateLimit | None = None,
    ) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._file.seek(offset)
        self._left = length
        self._length = length
        self._progress = progress
        self._cancel = cancel
        self._limit = limit
        self.sent = 0

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if self._cancel is not None and self._cancel.is_set():
            raise _Cancelled()
        if self._left <= 0:
            return b""
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._file.read(size)
        if not data:
            raise TransferFailed("the file became shorter while it was being uploaded")
        if self._limit is not None:
            self._limit.take(len(data))
        self._left -= len(data)
        self.sent += len(data)
        if self._progress is not None:
            self._progress.add(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(self.CHUNK):
            yield chunk

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FileSlice:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass
class UploadResult:
    video: str
    upload: str
    file: str
    size_bytes: int
    content_type: str
    state: str = "COMPLETED"
    already_completed: bool = False  # an earlier run had finished it; nothing was sent
    resumed: bool = False  # an earlier run's upload was continued
    multipart: bool = False
    parts_total: int = 0
    parts_reused: int = 0  # parts storage already held from an earlier run
    parts_sent: int = 0  # parts PUT by this run (successful PUTs, not attempts)
    put_attempts: int = 0  # PUT requests made, retries included
    bytes_sent: int = 0
    seconds: float = 0.0
    video_status: str = ""
    playback_url: str = ""
    failure_reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Signed:
    url: str
    expires: float  # epoch seconds


def _expiry(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9 if ts.seconds else time.time() + 300


class Uploader:
    """Uploads files to one Upload service as one user. Thread-safe for one upload at a time."""

    def __init__(
        self,
        target: str,
        token: str,
        *,
        parallel: int = 4,
        state_directory: Path | None = None,
        say: Callable[[str], None] | None = None,
        progress_stream: IO[str] | None = None,
        quiet: bool = False,
        rate_limit: int | None = None,
        channel: grpc.Channel | None = None,
    ) -> None:
        if parallel < 1:
            raise ValueError("parallel must be at least 1")
        self.target = target
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._parallel = parallel
        self._states = StateStore(state_directory or state_dir())
        self._quiet = quiet
        self._say = say or (
            lambda text: None if quiet else print(text, file=sys.stderr, flush=True)
        )
        self._progress_stream = progress_stream or sys.stderr
        self._limit = RateLimit(rate_limit) if rate_limit else None
        self._channel = channel or grpc.insecure_channel(target)
        self._owns_channel = channel is None
        self._stub = upload_service_pb2_grpc.UploadServiceStub(self._channel)
        self._put_attempts = 0
        self._count_lock = threading.Lock()

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- gRPC ------------------------------------------------------------------------------

    def _rpc(self, method: str, request: Message) -> Any:
        """Calls an UploadService method, retrying transient failures (every method the CLI
        uses is idempotent: reads, signing, or keyed by a request id)."""
        call = getattr(self._stub, method)
        for attempt in range(RPC_ATTEMPTS):
            try:
                return call(request, metadata=self._metadata, timeout=RPC_TIMEOUT_SECONDS)
            except grpc.RpcError as error:
                if error.code() not in RETRYABLE_RPC:
                    raise ServerRefused(method, error) from None
                if attempt == RPC_ATTEMPTS - 1:
                    raise TransferFailed(
                        f"cannot reach the Upload service at {self.target} ({method}: "
                        f"{error.code().name}: {error.details()}); is it running? "
                        "(--server / STREAMIFY_UPLOAD_TARGET)"
                    ) from None
                time.sleep(backoff_delay(attempt))
        raise AssertionError("unreachable")

    # --- the whole flow ---------------------------------------------------------------------

    def upload(
        self,
        path: Path | str,
        *,
        title: str = "",
        description: str = "",
        visibility: Visibility.ValueType = Visibility.VISIBILITY_UNSPECIFIED,
    ) -> UploadResult:
        """Uploads (or finishes uploading) one file; returns once CompleteUpload succeeded."""
        started = time.monotonic()
        self._put_attempts = 0
        source = inspect_file(Path(path))
        state = self._states.load(source.key) or UploadStateFile(
            path=str(source.path.absolute()), size=source.size, mtime_ns=source.mtime_ns
        )
        self._drop_stale(source, state)
        for attempt in range(2):
            upload = self._remembered(state)
            resumed = upload is not None
            if upload is None:
                upload = self._create(source, state, title, description, visibility)
            result = UploadResult(
                video=upload.video,
                upload=upload.name,
                file=str(source.path),
                size_bytes=source.size,
                content_type=source.content_type,
                resumed=resumed,
                multipart=upload.HasField("multipart"),
            )
            if upload.state == UploadState.UPLOAD_STATE_COMPLETED:
                self._say(
                    f"{source.path.name} was already uploaded: {upload.video} ({upload.name})"
                )
                self._states.remove(source.key)
                result.already_completed = True
                return result
            try:
                if upload.HasField("multipart"):
                    self._multipart(source, upload, result)
                else:
                    self._single(source, upload, result)
            except _UploadGone:
                if attempt:
                    raise TransferFailed(
                        f"storage lost the parts of {upload.name} twice; giving up"
                    ) from None
                self._say(
                    f"storage no longer holds the parts of {upload.name}; starting a new upload"
                )
                self._abandon(upload.name)
                self._forget(state)
                continue
            self._states.remove(source.key)
            result.put_attempts = self._put_attempts
            result.seconds = round(time.monotonic() - started, 3)
            return result
        raise AssertionError("unreachable")

    def _drop_stale(self, source: _Source, state: UploadStateFile) -> None:
        """The file changed since an earlier, unfinished run: that upload can never be finished,
        so abort it (it counts against the user's pending uploads) and forget it."""
        for file, other in self._states.others_for(state.path, source.key):
            if other.upload and other.server == self.target:
                self._say(
                    f"{source.path.name} changed since {other.upload} was started; aborting that upload"
                )
                self._abandon(other.upload)
            file.unlink(missing_ok=True)

    def _abandon(self, name: str) -> None:
        """Best effort: frees the user's pending-upload quota; the sweeper would do it later."""
        with contextlib.suppress(UploadError):
            self._rpc("AbortUpload", api.AbortUploadRequest(name=name))

    def _remembered(self, state: UploadStateFile) -> api.Upload | None:
        """The upload an earlier run started for this file, if it can still be used."""
        if not state.upload:
            return None
        if state.server and state.server != self.target:
            self._say(
                f"the earlier upload {state.upload} went to {state.server}, not {self.target}; starting over"
            )
            state.upload = state.video = ""
            return None
        try:
            upload: api.Upload = self._rpc("GetUpload", api.GetUploadRequest(name=state.upload))
        except ServerRefused as refused:
            if refused.code != grpc.StatusCode.NOT_FOUND:
                raise
            self._say(f"the earlier upload {state.upload} no longer exists; starting over")
            self._forget(state)
            return None
        if upload.state == UploadState.UPLOAD_STATE_ABORTED:
            self._say(f"the earlier upload {upload.name} was aborted or expired; starting over")
            self._forget(state)
            return None
        return upload

    def _forget(self, state: UploadStateFile) -> None:
        state.generation += 1
        state.upload = state.video = state.request_id = ""

    def _create(
        self,
        source: _Source,
        state: UploadStateFile,
        title: str,
        description: str,
        visibility: Visibility.ValueType,
    ) -> api.Upload:
        for _ in range(3):
            state.request_id = request_id_for(source.key, state.generation)
            state.server = self.target
            self._states.save(
                source.key, state
            )  # before the call: a crash right after it finds the upload again
            upload: api.Upload = self._rpc(
                "CreateUpload",
                api.CreateUploadRequest(
                    file_name=source.path.name[-255:],
                    size_bytes=source.size,
                    content_type=source.content_type,
                    title=title,
                    description=description,
                    request_id=state.request_id,
                    visibility=visibility,
                ),
            )
            if upload.state != UploadState.UPLOAD_STATE_ABORTED:
                state.upload, state.video = upload.name, upload.video
                self._states.save(source.key, state)
                return upload
            self._forget(state)  # an old, abandoned upload of this file answered the request id
        raise TransferFailed("the server keeps returning aborted uploads for this file")

    # --- single PUT -------------------------------------------------------------------------

    def _single(self, source: _Source, upload: api.Upload, result: UploadResult) -> None:
        if result.resumed:
            self._say(
                "resuming: the earlier run did not finish its single PUT; sending the file again"
            )
        current = {"put": upload.single_put}

        def signed(fresh: bool) -> tuple[str, dict[str, str]]:
            if fresh or _expiry(current["put"].expire_time) - time.time() < URL_MARGIN_SECONDS:
                current["put"] = self._rpc(
                    "GetUpload", api.GetUploadRequest(name=upload.name)
                ).single_put
            put = current["put"]
            if not put.url:
                raise TransferFailed(f"{upload.name} has no URL to PUT to (is it still pending?)")
            return put.url, dict(put.headers)

        progress = Progress(source.size)
        for round_ in range(2):
            with (
                requests.Session() as session,
                ProgressReporter(progress, self._progress_stream, quiet=self._quiet),
            ):
                self._put(
                    session,
                    source,
                    PartSlice(1, 0, source.size),
                    signed,
                    progress,
                    threading.Event(),
                    what="the file",
                )
            result.bytes_sent += source.size
            try:
                self._complete(upload, [])
                return
            except ServerRefused as refused:
                if refused.reason not in REPAIRABLE or round_ == 1:
                    raise
                self._say(
                    f"storage does not hold the whole file yet ({refused.message}); sending it again"
                )

    # --- multipart --------------------------------------------------------------------------

    def _multipart(self, source: _Source, upload: api.Upload, result: UploadResult) -> None:
        plan = part_slices(
            source.size, upload.multipart.part_size_bytes, upload.multipart.part_count
        )
        result.parts_total = len(plan)
        etags, missing = self._held_parts(upload, plan)
        if etags:
            result.resumed = True
            result.parts_reused = len(etags)
            self._say(f"resuming: {len(etags)} of {len(plan)} parts already uploaded")
        for round_ in range(3):
            if missing:
                sent = self._send_parts(source, upload, [plan[n - 1] for n in missing], plan)
                etags.update(sent)
                result.parts_sent += len(sent)
                result.bytes_sent += sum(plan[n - 1].length for n in sent)
            try:
                self._complete(upload, sorted(etags.items()))
                return
            except ServerRefused as refused:
                if refused.reason not in REPAIRABLE or round_ == 2:
                    raise
                self._say(f"storage is missing parts ({refused.message}); sending them again")
                etags, missing = self._held_parts(upload, plan)

    def _held_parts(
        self, upload: api.Upload, plan: list[PartSlice]
    ) -> tuple[dict[int, str], list[int]]:
        """ETags of the parts storage holds with the right size, and the numbers still to send."""
        held: dict[int, str] = {}
        token = ""
        while True:
            try:
                page = self._rpc(
                    "ListParts", api.ListPartsRequest(name=upload.name, page_token=token)
                )
            except ServerRefused as refused:
                if refused.reason == "UPLOAD_GONE":
                    raise _UploadGone() from None
                raise
            for p in page.parts:
                if p.part_number <= len(plan) and p.size_bytes == plan[p.part_number - 1].length:
                    held[p.part_number] = p.etag
            token = page.next_page_token
            if not token:
                break
        return held, [s.number for s in plan if s.number not in held]

    def _send_parts(
        self, source: _Source, upload: api.Upload, todo: list[PartSlice], plan: list[PartSlice]
    ) -> dict[int, str]:
        already = source.size - sum(s.length for s in todo)
        progress = Progress(source.size, already=already)
        cancel = threading.Event()
        book = _UrlBook(self, upload.name, [s.number for s in todo], self._parallel)
        work: queue.SimpleQueue[PartSlice] = queue.SimpleQueue()
        for s in todo:
            work.put(s)
        results: queue.SimpleQueue[tuple[int, str | None, BaseException | None]] = (
            queue.SimpleQueue()
        )

        def worker() -> None:
            with requests.Session() as session:
                while not cancel.is_set():
                    try:
                        part = work.get_nowait()
                    except queue.Empty:
                        return
                    try:
                        etag = self._put(
                            session,
                            source,
                            part,
                            functools.partial(_signed_part, book, part.number),
                            progress,
                            cancel,
                            what=f"part {part.number}",
                        )
                    except _Cancelled:
                        return
                    except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                        cancel.set()
                        results.put((part.number, None, exc))
                        return
                    results.put((part.number, etag, None))

        threads = [
            threading.Thread(target=worker, name=f"upload-part-{i}", daemon=True)
            for i in range(min(self._parallel, len(todo)))
        ]
        etags: dict[int, str] = {}
        with ProgressReporter(progress, self._progress_stream, quiet=self._quiet):
            try:
                for t in threads:
                    t.start()
                while len(etags) < len(todo):
                    try:
                        number, etag, exc = results.get(timeout=0.5)
                    except queue.Empty:
                        continue
                    if exc is not None:
                        raise exc
                    etags[number] = etag  # type: ignore[assignment]
            finally:
                cancel.set()  # on error or Ctrl-C: the other threads stop at their next block
        return etags

    def _put(
        self,
        session: requests.Session,
        source: _Source,
        part: PartSlice,
        signed: Callable[[bool], tuple[str, dict[str, str]] | str],
        progress: Progress,
        cancel: threading.Event,
        *,
        what: str,
    ) -> str:
        """PUTs one slice of the file, retrying; returns the ETag storage gave it."""
        fresh = False
        resigns = failures = 0
        while True:
            if cancel.is_set():
                raise _Cancelled()
            target = signed(fresh)
            url, headers = target if isinstance(target, tuple) else (target, {})
            fresh = False
            with self._count_lock:
                self._put_attempts += 1
            with FileSlice(
                source.path,
                part.offset,
                part.length,
                progress=progress,
                cancel=cancel,
                limit=self._limit,
            ) as body:
                try:
                    reply = session.put(url, data=body, headers=headers, timeout=(10, 300))
                except requests.RequestException as exc:
                    progress.take_back(body.sent)
                    problem, retry_after = f"{type(exc).__name__}: {exc}", None
                else:
                    if 200 <= reply.status_code < 300:
                        etag = reply.headers.get("ETag", "")
                        if not etag:
                            raise TransferFailed(f"storage accepted {what} but returned no ETag")
                        return etag
                    progress.take_back(body.sent)
                    detail = s3_error_summary(reply.text)
                    if reply.status_code == 403 and resigns < RESIGNS_PER_PART:
                        resigns += 1  # most likely the URL expired: sign again and retry at once
                        fresh = True
                        continue
                    if reply.status_code not in RETRYABLE_HTTP:
                        raise TransferFailed(
                            f"storage refused {what}: HTTP {reply.status_code} {detail}"
                        )
                    problem, retry_after = (
                        f"HTTP {reply.status_code} {detail}",
                        reply.headers.get("Retry-After"),
                    )
            failures += 1
            if failures >= PUT_ATTEMPTS:
                raise TransferFailed(
                    f"sending {what} failed {failures} times; last error: {problem}"
                )
            delay = backoff_delay(failures - 1)
            if retry_after and retry_after.isdigit():
                delay = max(delay, min(float(retry_after), BACKOFF_CAP_SECONDS))
            self._say(f"{what}: {problem}; retrying in {delay:.1f}s")
            if cancel.wait(delay):
                raise _Cancelled()

    def _complete(self, upload: api.Upload, etags: Sequence[tuple[int, str]]) -> api.Upload:
        completed: api.Upload = self._rpc(
            "CompleteUpload",
            api.CompleteUploadRequest(
                name=upload.name,
                request_id=f"cli-complete-{upload.name.removeprefix('uploads/')}"[:64],
                parts=[api.CompletedPart(part_number=n, etag=e) for n, e in etags],
            ),
        )
        return completed


def _signed_part(book: _UrlBook, number: int, fresh: bool) -> str:
    """The signed URL of part `number` (a fresh one when `fresh`): what `_put` calls to sign."""
    return book.get(number, fresh)


class _UrlBook:
    """Signed part URLs, signed in batches of up to 100 a little ahead of the threads that need
    them (the threads take parts in `order`); an expiring or refused URL is signed again alone."""

    def __init__(self, uploader: Uploader, name: str, order: list[int], parallel: int) -> None:
        self._uploader = uploader
        self._name = name
        self._order = order
        self._position = {n: i for i, n in enumerate(order)}
        self._low_water = max(2 * parallel, 4)
        self._cursor = 0  # order[:cursor] have been signed at least once
        self._urls: dict[int, _Signed] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def get(self, number: int, fresh: bool = False) -> str:
        with self._lock:
            position = self._position[number]
            entry = self._urls.pop(number, None)
            if entry is None and position >= self._cursor:
                while position >= self._cursor:
                    self._sign_next_batch()
                entry = self._urls.pop(number)
            if fresh or entry is None or entry.expires - time.time() < URL_MARGIN_SECONDS:
                self._sign([number])
                entry = self._urls.pop(number)
            if self._cursor < len(self._order) and self._cursor - position - 1 < self._low_water:
                self._sign_next_batch()
            return entry.url

    def _sign_next_batch(self) -> None:
        batch = self._order[self._cursor : self._cursor + SIGN_BATCH]
        self._sign(batch)
        self._cursor += len(batch)

    def _sign(self, numbers: list[int]) -> None:
        self.calls += 1
        reply = self._uploader._rpc(
            "SignParts", api.SignPartsRequest(name=self._name, part_numbers=numbers)
        )
        for part in reply.parts:
            self._urls[part.part_number] = _Signed(part.url, _expiry(part.expire_time))


# --- following the video ---------------------------------------------------------------------------


def watch_video(
    target: str,
    token: str,
    video_name: str,
    *,
    say: Callable[[str], None] | None = None,
    channel: grpc.Channel | None = None,
    attempts: int = WATCH_ATTEMPTS,
) -> Video:
    """Follows a video with WatchVideo until READY (returned) or FAILED (TranscodeFailed),
    reporting every change through `say`; a broken stream is subscribed to again."""
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    own = channel is None
    channel = channel or grpc.insecure_channel(target)
    stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
    metadata = (("authorization", f"Bearer {token}"),)
    last = ""
    failures = 0
    try:
        while True:
            try:
                for message in stub.WatchVideo(
                    meta_api.WatchVideoRequest(name=video_name), metadata=metadata
                ):
                    failures = 0
                    video: Video = message.video
                    line = describe_video(video)
                    if line != last:
                        say(line)
                        last = line
                    if video.status == VideoStatus.VIDEO_STATUS_READY:
                        return video
                    if video.status == VideoStatus.VIDEO_STATUS_FAILED:
                        raise TranscodeFailed(video)
                problem = "the stream ended early"
            except grpc.RpcError as error:
                if error.code() not in RETRYABLE_RPC | {
                    grpc.StatusCode.INTERNAL,
                    grpc.StatusCode.UNKNOWN,
                }:
                    raise ServerRefused("WatchVideo", error) from None
                problem = f"{error.code().name}: {error.details()}"
            failures += 1
            if failures >= attempts:
                raise TransferFailed(
                    f"lost the Metadata service at {target} while watching {video_name}: {problem}"
                )
            time.sleep(backoff_delay(failures - 1))
    finally:
        if own:
            channel.close()
