"""The transcode worker: one bidirectional stream to the orchestrator, one child process per task.

``streamify worker --orchestrator HOST:PORT [--slots N]`` (or ``python -m
streamify.transcode.worker.main ...``) runs :func:`run_worker`. The worker

* opens ``TranscodeWorkerService.Connect`` with a service token, says hello (id, slots,
  encoders) and waits for the welcome, which sets the heartbeat interval;
* runs the ``TaskAssignment``s the orchestrator pushes (it never polls), at most ``slots`` at a
  time, each in its own child process (``worker_tasks``): a crash, a hang or a kill of one task
  never takes the worker down, memory is returned after each task, and a
  ``TaskCancellation`` is a real kill of the child's PID;
* sends a heartbeat with its running task ids every interval, each task's progress at most
  about once per second, and one ``TaskResult`` or ``TaskFailure`` per task; a child that dies
  without answering is a retryable failure ("the encoder process died (signal 9, SIGKILL)");
* when the stream breaks, kills its running tasks (the orchestrator re-queues them) and
  reconnects with exponential backoff and jitter, forever;
* on SIGTERM/SIGINT kills its running tasks, closes the stream and returns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeAlias

import grpc
import grpc.aio

from streamify.core import backoff as core_backoff
from streamify.core.config import Settings
from streamify.core.logs import get_logger
from streamify.core.server import client_channel, service_call_metadata
from streamify.transcode.worker import convert as conv
from streamify.transcode.worker import outputs
from streamify.transcode.worker.task_process import TaskProcess, describe_exit
from streamify.transcode.worker.tasks import ENCODE_SHARE, child_limits, child_settings
from streamify.v1 import worker_service_pb2 as pb
from streamify.v1 import worker_service_pb2_grpc as pb_grpc

__all__ = ["Worker", "backoff_delay", "main", "run_worker"]

log = get_logger(__name__)

SERVICE_SUBJECT = "worker"
ENCODERS = ("libx264", "aac")
DEFAULT_HEARTBEAT = 10.0  # seconds, when the welcome does not say
MIN_HEARTBEAT = 0.05
WELCOME_TIMEOUT = 30.0  # a connected orchestrator that does not welcome us: reconnect
PROGRESS_INTERVAL = 1.0  # at most one TaskProgress per task per this many seconds
BACKOFF_BASE = 0.5
BACKOFF_CAP = 10.0
STABLE_SESSION = 10.0  # a session that lasted this long resets the backoff


# seconds before reconnect number `attempt` (0-based): jittered, so that workers cut off
# together do not come back together
backoff_delay = functools.partial(core_backoff.backoff_delay, base=BACKOFF_BASE, cap=BACKOFF_CAP)


WORK_DIR_PREFIX = "streamify-worker-"
_LOCK_NAME = ".lock"


def _hold_lock(directory: Path) -> int | None:
    """An exclusive flock on ``directory/.lock``, held while the worker lives (the kernel
    drops it when the process dies, however it dies)."""
    try:
        import fcntl

        # Locked under a private name, then renamed: a sweeper never sees an unlocked .lock.
        private = directory / f"{_LOCK_NAME}.{os.getpid()}"
        fd = os.open(private, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(private, directory / _LOCK_NAME)
        return fd
    except (ImportError, OSError):
        return None


def sweep_work_dirs(root: Path) -> None:
    """Delete the work directories of dead workers (killed before they could clean up):
    those whose lock nobody holds. Safe with other live workers sharing ``root``."""
    try:
        import fcntl
    except ImportError:
        return
    for directory in Path(root).glob(f"{WORK_DIR_PREFIX}*"):
        lock_path = directory / _LOCK_NAME
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except FileNotFoundError:
            continue  # being created by a worker starting right now, or not ours
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a live worker holds it
        try:
            log.info("removing %s, left behind by a worker that died", directory)
            shutil.rmtree(directory, ignore_errors=True)
        finally:
            os.close(fd)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("streamify")
    except Exception:  # noqa: BLE001
        return "0.0.0"


def _encoders() -> list[str]:
    try:
        import av

        available = av.codecs_available
        return [name for name in ENCODERS if name in available]
    except Exception:  # noqa: BLE001
        return list(ENCODERS)


@dataclass
class RunningTask:
    assignment: pb.TaskAssignment
    process: TaskProcess
    runner: asyncio.Task[None] | None = None
    started: float = field(default_factory=time.monotonic)
    last_activity: float = field(default_factory=time.monotonic)
    stalled: bool = False

    @property
    def task_id(self) -> str:
        return self.assignment.task_id

    @property
    def lease_id(self) -> str:
        return self.assignment.lease_id

    @property
    def pid(self) -> int | None:
        return self.process.pid


def _failure(assignment: pb.TaskAssignment, error: str, retryable: bool) -> pb.ConnectRequest:
    return pb.ConnectRequest(
        failure=pb.TaskFailure(
            task_id=assignment.task_id,
            lease_id=assignment.lease_id,
            error=error,
            retryable=retryable,
        )
    )


class _StreamClosed(Exception):
    """The orchestrator ended the stream (or it broke)."""


# A string: grpc's classes are generic only in their type stubs.
_Stream: TypeAlias = "grpc.aio.StreamStreamCall[pb.ConnectRequest, pb.ConnectResponse]"


async def _next_command(call: _Stream) -> pb.ConnectResponse | None:
    """The orchestrator's next message, None when it has closed the stream."""
    message = await call.read()
    return message if isinstance(message, pb.ConnectResponse) else None


class Worker:
    """A transcode worker; :meth:`run` serves until ``stop`` is set.

    ``running`` (task id -> :class:`RunningTask`, with the child's ``pid``) and ``sessions``
    (welcomes received) are there for operators' introspection and tests.
    """

    def __init__(
        self,
        settings: Settings,
        target: str,
        slots: int = 1,
        *,
        worker_id: str | None = None,
        stall_timeout: float | None = None,
        backoff_cap: float = BACKOFF_CAP,
        work_dir: Path | None = None,
    ) -> None:
        """`stall_timeout` and `work_dir` default to settings.worker's."""
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.settings = settings
        self.target = target
        self.slots = slots
        self.hostname = socket.gethostname()
        self.worker_id = worker_id or f"{self.hostname}-{os.getpid()}"
        self.stall_timeout = stall_timeout or settings.worker.task_stall_seconds
        self.backoff_cap = backoff_cap
        configured = settings.worker.work_dir
        self._work_dir_arg = work_dir or (Path(configured) if configured else None)
        self.work_dir: Path | None = None
        self.running: dict[str, RunningTask] = {}
        self.sessions = 0
        self.orchestrator_id = ""
        self._child_settings = child_settings(settings)
        self._child_limits = child_limits(settings)
        self._outbox: asyncio.Queue[pb.ConnectRequest] | None = None

    # -- public ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, serve, reconnect with backoff, until ``stop`` is set."""
        root = self._work_dir_arg or Path(tempfile.gettempdir())
        root.mkdir(parents=True, exist_ok=True)
        sweep_work_dirs(root)
        self.work_dir = Path(tempfile.mkdtemp(prefix=WORK_DIR_PREFIX, dir=root))
        lock = _hold_lock(self.work_dir)
        attempt = 0
        log.info(
            "worker %s starting: orchestrator %s, %d slot(s)",
            self.worker_id,
            self.target,
            self.slots,
        )
        try:
            while not stop.is_set():
                started = time.monotonic()
                welcomed = False
                try:
                    welcomed = await self._session(stop)
                except _StreamClosed as exc:
                    welcomed = True
                    log.warning("stream to the orchestrator closed: %s", exc)
                except grpc.aio.AioRpcError as exc:
                    log.warning(
                        "cannot talk to the orchestrator at %s: %s %s",
                        self.target,
                        exc.code().name,
                        exc.details(),
                    )
                except Exception:
                    log.exception("worker session failed")
                finally:
                    await self._kill_all("the stream to the orchestrator ended")
                if stop.is_set():
                    break
                if welcomed and time.monotonic() - started >= STABLE_SESSION:
                    attempt = 0
                delay = backoff_delay(attempt, cap=self.backoff_cap)
                attempt += 1
                log.info("reconnecting in %.1f s (attempt %d)", delay, attempt)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            await self._kill_all("the worker is stopping")
            shutil.rmtree(self.work_dir, ignore_errors=True)
            if lock is not None:
                os.close(lock)
            log.info("worker %s stopped", self.worker_id)

    # -- one session ----------------------------------------------------------------------

    async def _session(self, stop: asyncio.Event) -> bool:
        """One stream, from hello to its end. Returns whether it was welcomed; raises
        _StreamClosed when a welcomed stream ends, AioRpcError when it fails."""
        channel = client_channel(self.target)
        call = None
        helpers: list[asyncio.Task[None]] = []
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            stub = pb_grpc.TranscodeWorkerServiceStub(channel)
            call = stub.Connect(metadata=service_call_metadata(self.settings, SERVICE_SUBJECT))
            await call.write(
                pb.ConnectRequest(
                    hello=pb.WorkerHello(
                        worker_id=self.worker_id,
                        slots=self.slots,
                        hostname=self.hostname,
                        version=_version(),
                        encoders=_encoders(),
                    )
                )
            )
            read = asyncio.ensure_future(_next_command(call))
            done, _ = await asyncio.wait(
                {read, stop_wait}, timeout=WELCOME_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
            if read not in done:
                read.cancel()
                if not stop.is_set():
                    log.warning("the orchestrator did not welcome us in %.0f s", WELCOME_TIMEOUT)
                return False
            first = read.result()
            if first is None:
                await self._raise_status(
                    call, "the orchestrator closed the stream before welcoming"
                )
            if first.WhichOneof("command") != "welcome":
                log.warning("expected a welcome, got %s; reconnecting", first.WhichOneof("command"))
                return False
            welcome = first.welcome
            interval = conv.seconds(welcome.heartbeat_interval) or DEFAULT_HEARTBEAT
            interval = max(MIN_HEARTBEAT, interval)
            self.orchestrator_id = welcome.orchestrator_id
            self.sessions += 1
            log.info(
                "connected to orchestrator %s at %s (heartbeat every %.1f s)",
                welcome.orchestrator_id or "?",
                self.target,
                interval,
            )

            outbox: asyncio.Queue[pb.ConnectRequest] = asyncio.Queue()
            self._outbox = outbox
            reader = asyncio.create_task(self._read(call))
            writer = asyncio.create_task(self._write(call, outbox))
            heartbeat = asyncio.create_task(self._heartbeat(outbox, interval))
            watchdog = asyncio.create_task(self._watchdog())
            helpers = [reader, writer, heartbeat, watchdog]
            done, _ = await asyncio.wait(
                {reader, writer, stop_wait}, return_when=asyncio.FIRST_COMPLETED
            )
            if stop.is_set():
                # Kill the tasks first (nothing more is reported for them), then half-close:
                # the orchestrator re-queues whatever this worker held.
                self._outbox = None
                await self._kill_all("the worker is stopping")
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(call.done_writing(), 2.0)
                return True
            failure = reader.exception() if reader.done() else None
            if isinstance(failure, grpc.aio.AioRpcError):
                raise failure
            if writer.done() and writer.exception() is not None:
                log.debug("writing to the stream failed", exc_info=writer.exception())
            await self._raise_status(call, "the orchestrator ended the stream")
            return True
        finally:
            self._outbox = None
            stop_wait.cancel()
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            if call is not None:
                call.cancel()
            await channel.close()

    @staticmethod
    async def _raise_status(call: _Stream, what: str) -> NoReturn:
        try:
            code = await call.code()
            details = await call.details()
        except Exception:  # noqa: BLE001
            code, details = None, ""
        name = code.name if code is not None else "?"
        raise _StreamClosed(f"{what} (status {name}{': ' + details if details else ''})")

    async def _read(self, call: _Stream) -> None:
        while True:
            message = await _next_command(call)
            if message is None:
                return
            command = message.WhichOneof("command")
            if command == "assignment":
                self._on_assignment(message.assignment)
            elif command == "cancellation":
                self._on_cancellation(message.cancellation)
            elif command == "welcome":
                log.info("ignoring a second welcome")
            else:
                log.warning("ignoring an unknown command from the orchestrator")

    @staticmethod
    async def _write(call: _Stream, outbox: asyncio.Queue[pb.ConnectRequest]) -> None:
        while True:
            message = await outbox.get()
            await call.write(message)

    async def _heartbeat(self, outbox: asyncio.Queue[pb.ConnectRequest], interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            outbox.put_nowait(pb.ConnectRequest(heartbeat=self._running_leases()))

    async def _watchdog(self) -> None:
        """Kill tasks that have said nothing (no progress, no result) for ``stall_timeout``."""
        period = max(0.05, min(5.0, self.stall_timeout / 4))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for task in list(self.running.values()):
                if now - task.last_activity > self.stall_timeout:
                    log.error(
                        "task %s made no progress for %.0f s; killing process %s",
                        task.task_id,
                        self.stall_timeout,
                        task.pid,
                    )
                    task.last_activity = float("inf")  # once
                    task.stalled = True
                    task.process.kill()

    def _send(self, message: pb.ConnectRequest) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(message)

    def _fail(self, assignment: pb.TaskAssignment, error: str, retryable: bool) -> None:
        self._send(_failure(assignment, error, retryable))

    # -- tasks ------------------------------------------------------------------------------

    def _running_leases(self) -> pb.WorkerHeartbeat:
        """What this worker runs, with the lease ids that prove the leases are its own."""
        return pb.WorkerHeartbeat(
            task_ids=list(self.running),
            leases=[
                pb.HeldLease(task_id=task_id, lease_id=task.lease_id)
                for task_id, task in self.running.items()
            ],
        )

    def _on_assignment(self, assignment: pb.TaskAssignment) -> None:
        task_id = assignment.task_id
        if not task_id:
            log.warning("ignoring an assignment without a task id")
            return
        previous = self.running.get(task_id)
        if previous is not None and previous.lease_id == assignment.lease_id:
            log.info("task %s: duplicate assignment ignored", task_id)
            return
        if previous is None and len(self.running) >= self.slots:
            log.warning("task %s refused: all %d slot(s) are busy", task_id, self.slots)
            self._fail(
                assignment,
                f"worker {self.worker_id} has no free slot ({len(self.running)} of "
                f"{self.slots} busy)",
                True,
            )
            return
        if previous is not None:  # re-assigned with a new lease: the new one replaces it
            log.info("task %s re-assigned with a new lease; restarting it", task_id)
            self._stop_task(previous)
        process = TaskProcess(
            assignment, self._child_settings, self._task_root(), limits=self._child_limits
        )
        task = RunningTask(assignment, process)
        self.running[task_id] = task
        task.runner = asyncio.create_task(
            self._run_task(task, previous.runner if previous else None),
            name=f"task {task_id}",
        )

    def _on_cancellation(self, cancellation: pb.TaskCancellation) -> None:
        task = self.running.get(cancellation.task_id)
        if task is None:
            log.info("cancellation of task %s, which is not running here", cancellation.task_id)
            return
        log.info(
            "task %s cancelled (%s): killing process %s",
            cancellation.task_id,
            cancellation.reason or "no reason given",
            task.pid,
        )
        self._stop_task(task)

    def _stop_task(self, task: RunningTask) -> None:
        """Forget the task (nothing more is reported for it) and kill its child."""
        if self.running.get(task.task_id) is task:
            del self.running[task.task_id]
        task.process.kill()
        if task.runner is not None:
            task.runner.cancel()

    async def _kill_all(self, why: str) -> None:
        tasks = list(self.running.values())
        if tasks:
            log.info("%s: killing %d running task(s)", why, len(tasks))
        for task in tasks:
            self._stop_task(task)
        await asyncio.gather(
            *(t.runner for t in tasks if t.runner is not None), return_exceptions=True
        )

    def _task_root(self) -> Path:
        assert self.work_dir is not None
        return self.work_dir

    def _died(self, task: RunningTask, returncode: int) -> pb.ConnectRequest:
        """The failure of a task process that exited without a result."""
        error, retryable = f"the encoder process died ({describe_exit(returncode)})", True
        if task.stalled:
            error = f"the task made no progress for {self.stall_timeout:.0f} s and was killed"
        elif returncode == -signal.SIGXCPU:
            limit = self._child_limits["RLIMIT_CPU"]
            error = f"the video needs more CPU time than one task may use ({limit} s)"
            retryable = False
        elif returncode == -signal.SIGXFSZ:
            limit = self._child_limits["RLIMIT_FSIZE"]
            error = f"the video makes a file larger than a task may write ({limit} bytes)"
            retryable = False
        log.warning("task %s: %s", task.task_id, error)
        return _failure(task.assignment, error, retryable)

    async def _upload_outputs(self, task: RunningTask) -> pb.ConnectRequest | None:
        """Upload what the finished task process listed; None when done, else the failure to
        report instead of its result."""
        assert task.process.workdir is not None
        output = outputs.output_of(task.assignment)
        try:
            uploads = outputs.read_manifest(task.process.workdir, output)
        except outputs.ManifestError as exc:
            log.error(
                "task %s: the task process asked for a forbidden upload: %s", task.task_id, exc
            )
            return _failure(
                task.assignment, f"the task process misbehaved ({exc}); nothing was stored", False
            )
        if not uploads:
            return None
        assert output is not None
        loop = asyncio.get_running_loop()
        last_sent = -float("inf")

        def progress(fraction: float) -> None:  # in an upload thread
            loop.call_soon_threadsafe(report, ENCODE_SHARE + (1.0 - ENCODE_SHARE) * fraction)

        def report(fraction: float) -> None:
            nonlocal last_sent
            task.last_activity = time.monotonic()
            if task.last_activity - last_sent >= PROGRESS_INTERVAL and self._owns(task):
                last_sent = task.last_activity
                self._send(
                    pb.ConnectRequest(
                        progress=pb.TaskProgress(
                            task_id=task.task_id, lease_id=task.lease_id, fraction=fraction
                        )
                    )
                )

        try:
            await asyncio.to_thread(outputs.upload_all, output.policy, uploads, progress)
        except outputs.StorageError as exc:
            log.warning("task %s: %s", task.task_id, exc, exc_info=exc.__cause__)
            return _failure(task.assignment, str(exc), True)
        return None

    async def _run_task(self, task: RunningTask, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:  # let the replaced run free its slot first
            await asyncio.gather(previous, return_exceptions=True)
        assignment, process = task.assignment, task.process
        fields = conv.describe_assignment(assignment)
        final: pb.ConnectRequest | None = None
        last_progress = -float("inf")
        try:
            if missing := outputs.missing_access(assignment):
                log.warning("task %s: %s", task.task_id, missing)
                if self._owns(task):
                    del self.running[task.task_id]
                    self._send(
                        _failure(task.assignment, f"{missing}; upgrade the orchestrator", True)
                    )
                return
            await process.start()
            log.info(
                "task %s (%s, attempt %d) started in process %s",
                task.task_id,
                fields["kind"] or "?",
                assignment.attempt,
                process.pid,
                extra=dict(fields),
            )
            async for message in process.messages():
                task.last_activity = time.monotonic()
                event = message.WhichOneof("event")
                if event == "progress":
                    now = time.monotonic()
                    if now - last_progress >= PROGRESS_INTERVAL and self._owns(task):
                        last_progress = now
                        message.progress.task_id = task.task_id
                        message.progress.lease_id = task.lease_id
                        self._send(message)
                elif event in ("result", "failure"):
                    final = message
            returncode = await process.wait()
            if final is None:
                final = self._died(task, returncode)
            elif final.WhichOneof("event") == "result":
                final = await self._upload_outputs(task) or final
            if final.WhichOneof("event") == "result":
                final.result.task_id, final.result.lease_id = task.task_id, task.lease_id
                final.result.elapsed.CopyFrom(conv.duration(time.monotonic() - task.started))
                log.info("task %s done in %.1f s", task.task_id, time.monotonic() - task.started)
            else:
                final.failure.task_id, final.failure.lease_id = task.task_id, task.lease_id
                log.info(
                    "task %s failed: %s (retryable %s)",
                    task.task_id,
                    final.failure.error,
                    final.failure.retryable,
                )
            await process.close()  # its directory is gone before the result is reported
            if self._owns(task):
                del self.running[task.task_id]
                self._send(final)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task %s: the worker could not run it", task.task_id)
            if self._owns(task):
                del self.running[task.task_id]
                self._fail(
                    assignment,
                    "the worker could not start the task process; the worker's log has the details",
                    True,
                )
        finally:
            if self._owns(task):
                del self.running[task.task_id]
            await process.close()

    def _owns(self, task: RunningTask) -> bool:
        return self.running.get(task.task_id) is task


# --- entry points ----------------------------------------------------------------------------


async def run_worker(
    settings: Settings,
    target: str,
    slots: int = 1,
    *,
    stop_event: asyncio.Event | None = None,
    on_worker: Callable[[Worker], object] | None = None,
) -> None:
    """Serve ``target`` (the orchestrator's HOST:PORT) until SIGTERM/SIGINT or ``stop_event``.

    Signal handlers are installed when running in the main thread. On a signal the worker
    kills its running tasks, closes the stream and returns (exit 0)."""
    stop = stop_event if stop_event is not None else asyncio.Event()
    # A refused credential (no secret, a weak one) ends the worker here, not in the reconnect loop.
    service_call_metadata(settings, SERVICE_SUBJECT)
    worker = Worker(settings, target, slots)
    if on_worker is not None:
        on_worker(worker)
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, _on_signal, stop, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
    try:
        await worker.run(stop)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.info("received %s: stopping", sig.name)
    stop.set()


def main(argv: list[str] | None = None) -> int:
    """``streamify-worker [--orchestrator HOST:PORT] [--slots N]``: the worker image's entry point
    (also `streamify worker`); the defaults come from the STREAMIFY_* settings."""
    parser = argparse.ArgumentParser(prog="streamify-worker", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--orchestrator",
        help="HOST:PORT of the orchestrator (default $STREAMIFY_ORCHESTRATOR_TARGET)",
    )
    parser.add_argument(
        "--slots", type=int, help="tasks run at once (default $STREAMIFY_WORKER_SLOTS)"
    )
    args = parser.parse_args(argv)
    if args.slots is not None and args.slots < 1:
        parser.error("--slots must be at least 1")
    from streamify.core.entrypoint import run_or_refuse
    from streamify.core.logs import configure_logging

    settings = Settings()
    configure_logging(settings)
    orchestrator = args.orchestrator or settings.orchestrator_target
    slots = args.slots or settings.worker.slots
    return run_or_refuse(
        "streamify worker", lambda: asyncio.run(run_worker(settings, orchestrator, slots))
    )


if __name__ == "__main__":
    sys.exit(main())
