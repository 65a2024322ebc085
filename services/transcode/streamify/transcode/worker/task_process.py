"""The worker's side of one task's child process (see ``worker_tasks`` for the child's side).

A :class:`TaskProcess` starts ``python -m streamify.transcode.worker.tasks`` in its own session
(a Ctrl-C on the worker's terminal reaches the worker only, which then kills its children),
hands it the settings and the assignment, yields the messages it sends back, and on
:meth:`close` kills it by its PID if it is still running and deletes its private directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from streamify.core.logs import get_logger
from streamify.transcode.worker.tasks import FRAME_HEADER, MAX_FRAME
from streamify.v1 import worker_service_pb2 as pb

log = get_logger(__name__)

CHILD_MODULE = "streamify.transcode.worker.tasks"
# The only environment variables a task process inherits: what Python, the C library and TLS
# need. Nothing of the worker's configuration (STREAMIFY_*, AWS_*: credentials) reaches it.
CHILD_ENVIRONMENT = (
    "PATH",
    "PYTHONPATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


def child_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in CHILD_ENVIRONMENT if name in os.environ}


def describe_exit(returncode: int | None) -> str:
    """``signal 9, SIGKILL`` / ``exit code 3`` for a child's return code."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"signal {-returncode}, {name}"
    return f"exit code {returncode}"


class TaskProcess:
    """One child process running one assignment."""

    def __init__(
        self,
        assignment: pb.TaskAssignment,
        settings: dict[str, Any],
        work_root: Path,
        *,
        limits: dict[str, int] | None = None,
    ) -> None:
        self.assignment = assignment
        self._settings = settings
        self._limits = limits or {}
        self._work_root = Path(work_root)
        self.workdir: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    async def start(self) -> None:
        self._work_root.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="task-", dir=self._work_root))
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            CHILD_MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,  # the child's log lines go where the worker's go
            env=child_environment(),
            start_new_session=True,
            limit=MAX_FRAME,
        )
        header = json.dumps(
            {
                "settings": self._settings,
                "workdir": str(self.workdir),
                "parent_pid": os.getpid(),
                "limits": self._limits,
            }
        ).encode()
        body = self.assignment.SerializeToString()
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(FRAME_HEADER.pack(len(header)) + header)
            self._proc.stdin.write(FRAME_HEADER.pack(len(body)) + body)
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child died at once: messages() ends and the exit code tells why
        finally:
            self._proc.stdin.close()

    async def messages(self) -> AsyncIterator[pb.ConnectRequest]:
        """What the child sends, until it closes its end (exits or is killed)."""
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        while True:
            try:
                header = await stdout.readexactly(FRAME_HEADER.size)
                (size,) = FRAME_HEADER.unpack(header)
                if size > MAX_FRAME:
                    log.error("task process %s sent a %d-byte frame; killing it", self.pid, size)
                    self.kill()
                    return
                data = await stdout.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionResetError):
                return
            try:
                yield pb.ConnectRequest.FromString(data)
            except Exception:  # noqa: BLE001 - a garbled frame: the child is broken
                log.error("task process %s sent an unreadable message; killing it", self.pid)
                self.kill()
                return

    async def wait(self) -> int:
        assert self._proc is not None
        return await self._proc.wait()

    def kill(self) -> None:
        """SIGKILL to the child's own PID (only while it has not been reaped)."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    async def close(self) -> None:
        """Kill the child if it still runs, reap it, delete its directory. Safe to call twice
        and from a cancelled task (it finishes its cleanup even then)."""
        cleanup = asyncio.ensure_future(self._close())
        try:
            await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            await cleanup
            raise

    async def _close(self) -> None:
        if self._proc is not None:
            self.kill()
            await self._proc.wait()
        if self.workdir is not None:
            await asyncio.to_thread(shutil.rmtree, self.workdir, True)
