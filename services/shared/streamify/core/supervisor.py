"""A small process supervisor for `streamify run`: starts child processes in order, waits for
each to be ready, restarts one that dies (with backoff), and stops them all by PID, newest
first, on Ctrl-C or SIGTERM. A child never outlives the supervisor: should the supervisor itself be
killed (SIGKILL, OOM), the kernel sends each child SIGTERM (Linux PR_SET_PDEATHSIG)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
Probe = Callable[[], Awaitable[bool]]

_PR_SET_PDEATHSIG = 1
# resolved before any fork: the child then makes one C call, no Python-level locks involved
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def die_with_parent(parent: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above: do not start
            os._exit(1)

    return preexec


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    ready: Probe | None = None  # None: ready as soon as it runs
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0


def _spawned(child: Child) -> asyncio.subprocess.Process:
    # Only a started child is in Supervisor.children: start() spawns it before adding it.
    assert child.process is not None, f"{child.name} was never spawned"
    return child.process


class ChildFailed(RuntimeError):
    pass


class Supervisor:
    def __init__(
        self,
        *,
        ready_timeout: float = 90.0,
        stop_timeout: float = 30.0,
        max_backoff: float = 10.0,
        log_dir: str | None = None,
    ) -> None:
        self.children: list[Child] = []
        self._ready_timeout = ready_timeout
        self._stop_timeout = stop_timeout
        self._max_backoff = max_backoff
        self._log_dir = log_dir
        self._stopping = False

    async def start(self, child: Child) -> None:
        """Starts `child` and waits until its probe says it is ready."""
        process = await self._spawn(child)
        self.children.append(child)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ready_timeout
        while child.ready is not None and not await child.ready():
            if process.returncode is not None:
                raise ChildFailed(
                    f"{child.name} exited with status {process.returncode} while starting"
                    + self._log_hint(child)
                )
            if loop.time() > deadline:
                raise ChildFailed(
                    f"{child.name} was not ready after {self._ready_timeout:g} s"
                    + self._log_hint(child)
                )
            await asyncio.sleep(0.1)

    async def watch(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: restart any child that exits, with exponential backoff."""
        waits = {asyncio.create_task(_spawned(c).wait()): c for c in self.children}
        stop_task = asyncio.create_task(stop.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {stop_task, *waits}, return_when=asyncio.FIRST_COMPLETED
                )
                if stop_task in done:
                    return
                for task in done:
                    child = waits.pop(task)
                    log.warning(
                        "%s exited with status %s; restarting",
                        child.name,
                        _spawned(child).returncode,
                    )
                    await asyncio.sleep(min(self._max_backoff, 0.5 * 2**child.restarts))
                    child.restarts += 1
                    process = await self._spawn(child)
                    waits[asyncio.create_task(process.wait())] = child
        finally:
            for task in (stop_task, *waits):
                task.cancel()

    async def stop_all(self) -> None:
        for child in reversed(self.children):
            await self._stop(child)

    async def _spawn(self, child: Child) -> asyncio.subprocess.Process:
        output = None
        if self._log_dir:
            os.makedirs(self._log_dir, exist_ok=True)
            output = open(os.path.join(self._log_dir, f"{child.name}.log"), "ab")  # noqa: SIM115
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            env={**os.environ, **child.env},
            stdout=output,
            stderr=output,
            start_new_session=True,  # Ctrl-C goes to us; we stop children in order
            preexec_fn=die_with_parent(os.getpid()),
        )
        if output is not None:
            output.close()
        log.info("started %s (pid %d)", child.name, child.process.pid)
        return child.process

    async def _stop(self, child: Child) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self._stop_timeout)
        except TimeoutError:
            log.warning("%s did not stop within %g s; killing it", child.name, self._stop_timeout)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    def _log_hint(self, child: Child) -> str:
        return f" (see {self._log_dir}/{child.name}.log)" if self._log_dir else ""
