"""One transcode task, run in its own child process: ``python -m streamify.transcode.worker.tasks``.

The worker (``streamify.transcode.worker.main``) starts one child per task, so that a crash, a hang
or a kill of one task never takes the worker down, memory goes back to the system after every
task, and cancelling a task is a real kill of the child's PID.

Protocol between the worker and the child (both ends are in this package, nothing else speaks
it): frames of a 4-byte big-endian length followed by that many bytes.

* stdin, worker -> child: a JSON frame ``{"settings": {...}, "workdir": "...", "parent_pid": n,
  "limits": {...}}`` then the ``TaskAssignment`` (protobuf bytes, its source's URL signed by
  the worker); then stdin is closed.
* stdout, child -> worker: ``ConnectRequest`` frames carrying ``progress`` (at most about one
  per second) and, last, exactly one ``result`` or ``failure``. The worker forwards them to the
  orchestrator as they are. Anything else the child (or FFmpeg) prints goes to stderr, which
  is the worker's log.

The child parses an untrusted file, so it holds nothing that opens anything else: its settings
are its logging only (no signing key, no storage keys, no database URL), its environment is
cleaned by the worker, and it runs under the resource limits of ``limits`` (address space, CPU
time, file size, open files), set before it reads a byte of the source. It reads the source
through the pre-signed URL (PyAV range requests, the file is never downloaded), writes outputs
to ``workdir`` and lists them in ``workdir/outputs.json``; the worker checks that list and
uploads them (``streamify.transcode.worker.outputs``), then deletes ``workdir``.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from streamify.core.config import Settings
from streamify.transcode.worker import convert as conv
from streamify.transcode.worker.outputs import write_manifest
from streamify.v1 import worker_service_pb2 as pb

log = logging.getLogger("streamify.transcode.worker.tasks")

FRAME_HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024
PROGRESS_INTERVAL = 1.0  # seconds between progress messages of one task
# Share of the progress bar given to encoding; uploading the outputs is the rest.
ENCODE_SHARE = 0.9


# --- framing ------------------------------------------------------------------------------------


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(FRAME_HEADER.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream: IO[bytes]) -> bytes:
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        raise EOFError("the worker closed the task pipe")
    (size,) = FRAME_HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is too large")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the worker closed the task pipe mid-frame")
    return data


# The only settings a task process gets: its logging (see the module docstring for why).
CHILD_SETTINGS = ("log_level", "log_format")

# Resource limits of a task process (resource.RLIMIT_* names -> the worker setting's name).
LIMITS = {
    "RLIMIT_AS": "task_max_memory_bytes",
    "RLIMIT_CPU": "task_max_cpu_seconds",
    "RLIMIT_FSIZE": "task_max_file_bytes",
    "RLIMIT_NOFILE": "task_max_open_files",
}


def child_settings(settings: Settings) -> dict[str, Any]:
    """The settings a task process gets, as JSON values: nothing secret."""
    return {name: getattr(settings, name) for name in CHILD_SETTINGS}


def child_limits(settings: Settings) -> dict[str, int]:
    """The resource limits a task process sets on itself (0: none)."""
    return {limit: int(getattr(settings.worker, name)) for limit, name in LIMITS.items()}


CPU_LIMIT_GRACE = 5  # seconds between SIGXCPU and SIGKILL


def apply_limits(limits: Mapping[str, int]) -> None:
    """Lower this process's soft and hard limits (for good: it cannot raise them again), and
    write no core dumps."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, value in limits.items():
        if value > 0:
            # The CPU limit's hard value a little above the soft one: at the soft limit the
            # kernel sends SIGXCPU, which the worker reports as such; at the hard limit it
            # sends SIGKILL, which says nothing (and equal limits reach the hard one first).
            hard = value + CPU_LIMIT_GRACE if name == "RLIMIT_CPU" else value
            resource.setrlimit(getattr(resource, name), (value, hard))


# --- progress -----------------------------------------------------------------------------------


class Progress:
    """Sends ``TaskProgress`` for one task, at most once per ``interval`` (and never backwards)."""

    def __init__(
        self,
        send: Callable[[pb.ConnectRequest], None],
        assignment: pb.TaskAssignment,
        interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self._send = send
        self._task_id = assignment.task_id
        self._lease_id = assignment.lease_id
        self._interval = interval
        self._last_sent = -float("inf")
        self._fraction = 0.0
        self._lock = threading.Lock()

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        with self._lock:
            now = time.monotonic()
            if fraction < self._fraction or now - self._last_sent < self._interval:
                return
            self._fraction, self._last_sent = fraction, now
        self._send(
            pb.ConnectRequest(
                progress=pb.TaskProgress(
                    task_id=self._task_id, lease_id=self._lease_id, fraction=fraction
                )
            )
        )

    def scaled(self, start: float, share: float) -> Callable[[float], None]:
        return lambda f: self(start + share * f)


# --- the task -----------------------------------------------------------------------------------


class TaskContext:
    """What a running task needs from its process: a private directory and progress."""

    def __init__(self, workdir: Path, progress: Progress) -> None:
        self.workdir = Path(workdir)
        self.progress = progress

    @staticmethod
    def source_url(source: pb.SourceRef) -> str:
        """The pre-signed URL the worker put in the spec."""
        if not source.url:
            raise conv.SpecError("the task's source has no URL (the worker signs one)")
        return source.url


def run_probe(spec: pb.ProbeSpec, ctx: TaskContext) -> pb.TaskResult:
    from streamify.transcode.media.errors import MediaError, Reason
    from streamify.transcode.media.probe import probe

    if not spec.source.url and not (spec.source.bucket and spec.source.key):
        raise conv.SpecError("the probe task has no source (neither a URL nor a bucket and key)")
    if spec.source.key and spec.source.size_bytes == 0:
        # Storage answers a ranged read of an empty object with 416, which FFmpeg reports as an
        # obscure HTTP error: say what is wrong instead.
        raise MediaError("the file is empty (0 bytes)", reason=Reason.EMPTY_FILE, retryable=False)
    info = probe(ctx.source_url(spec.source))
    return pb.TaskResult(probe=conv.probe_result(info))


def run_video_chunk(spec: pb.VideoChunkSpec, ctx: TaskContext) -> pb.TaskResult:
    from streamify.transcode.media.video_chunk import encode_video_chunk

    args = conv.video_chunk_args(spec)
    outputs = encode_video_chunk(
        ctx.source_url(spec.source),
        args.chunk,
        args.renditions,
        ctx.workdir / "out",
        segment_seconds=args.segment_seconds,
        frame_rate=args.frame_rate,
        rotation=args.rotation,
        ts_offset=args.ts_offset,
        on_progress=ctx.progress.scaled(0.0, ENCODE_SHARE),
    )
    write_manifest(ctx.workdir, conv.chunk_uploads(outputs, spec.output.prefix))
    return pb.TaskResult(video_chunk=conv.chunk_result(outputs, spec.output.prefix))


def run_audio(spec: pb.AudioSpec, ctx: TaskContext) -> pb.TaskResult:
    from streamify.transcode.media.audio import encode_audio

    args = conv.audio_args(spec)
    output = encode_audio(
        ctx.source_url(spec.source),
        ctx.workdir / conv.AUDIO_DIR,
        segment_seconds=args.segment_seconds,
        bitrate=args.bitrate,
        ts_offset=args.ts_offset,
        duration=args.duration,
        on_progress=ctx.progress.scaled(0.0, ENCODE_SHARE),
    )
    write_manifest(ctx.workdir, conv.audio_uploads(output, spec.output.prefix))
    return pb.TaskResult(audio=conv.audio_result(output, spec.output.prefix))


def run_poster(spec: pb.PosterSpec, ctx: TaskContext) -> pb.TaskResult:
    from streamify.transcode.media.poster import extract_poster

    args = conv.poster_args(spec)
    path = ctx.workdir / conv.POSTER_NAME
    width, height = extract_poster(
        ctx.source_url(spec.source),
        path,
        at_seconds=args.at_seconds,
        max_width=args.max_width,
        rotation=args.rotation,
    )
    upload = conv.Upload(
        str(path),
        conv.poster_key(spec.output.prefix),
        conv.POSTER_CONTENT_TYPE,
        conv.POSTER_CACHE_CONTROL,
    )
    write_manifest(ctx.workdir, [upload])
    return pb.TaskResult(poster=conv.poster_result(spec.output.prefix, width, height))


_RUNNERS: dict[str, Callable[[Any, TaskContext], pb.TaskResult]] = {
    "probe": run_probe,
    "video_chunk": run_video_chunk,
    "audio": run_audio,
    "poster": run_poster,
}


def execute(assignment: pb.TaskAssignment, ctx: TaskContext) -> pb.ConnectRequest:
    """Run the assignment; always returns a ``result`` or ``failure`` message, never raises
    (except BaseException such as KeyboardInterrupt)."""
    from streamify.transcode.media.errors import MediaError

    task_id, lease_id = assignment.task_id, assignment.lease_id

    def failure(error: str, retryable: bool) -> pb.ConnectRequest:
        return pb.ConnectRequest(
            failure=pb.TaskFailure(
                task_id=task_id, lease_id=lease_id, error=error, retryable=retryable
            )
        )

    kind = conv.spec_kind(assignment)
    runner = _RUNNERS.get(kind)
    if runner is None:
        return failure(
            "the task has no spec this worker knows (probe, video_chunk, audio, poster)", False
        )
    started = time.monotonic()
    try:
        result = runner(getattr(assignment, kind), ctx)
    except MediaError as exc:
        log.warning(
            "task %s failed: %s (reason %s, retryable %s)",
            task_id,
            exc.message,
            exc.reason,
            exc.retryable,
        )
        return failure(exc.message, exc.retryable)
    except conv.SpecError as exc:
        log.warning("task %s is invalid: %s", task_id, exc)
        return failure(f"invalid task: {exc}", False)
    except MemoryError:
        return failure("the worker ran out of memory", True)
    except Exception as exc:
        log.error("task %s failed unexpectedly", task_id, exc_info=True)
        return failure(
            f"the worker failed unexpectedly ({type(exc).__name__}); the worker's log has "
            "the details",
            True,
        )
    result.task_id, result.lease_id = task_id, lease_id
    result.elapsed.CopyFrom(conv.duration(time.monotonic() - started))
    return pb.ConnectRequest(result=result)


# --- the child process's entry point ---------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this process when the worker dies, so no orphan keeps encoding."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001 - not Linux: the worker still kills us by PID
        pass
    if parent_pid and os.getppid() != parent_pid:  # the worker died before prctl
        os._exit(1)


def main() -> int:
    # The protocol owns the real stdout; anything printed (by us, a library, FFmpeg) goes to
    # stderr instead of corrupting it.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    stdin = sys.stdin.buffer
    header = json.loads(read_frame(stdin))
    _die_with_parent(int(header.get("parent_pid") or 0))
    apply_limits(header.get("limits") or {})
    assignment = pb.TaskAssignment.FromString(read_frame(stdin))
    settings = Settings(**header["settings"])

    from streamify.core.logs import configure_logging

    configure_logging(settings)
    lock = threading.Lock()

    def send(message: pb.ConnectRequest) -> None:
        data = message.SerializeToString()
        with lock:
            write_frame(out, data)

    progress = Progress(send, assignment)
    ctx = TaskContext(Path(header["workdir"]), progress)
    log.info(
        "task %s started in process %d",
        assignment.task_id,
        os.getpid(),
        extra=dict(conv.describe_assignment(assignment)),
    )
    progress(0.0)
    send(execute(assignment, ctx))
    return 0


if __name__ == "__main__":
    sys.exit(main())
