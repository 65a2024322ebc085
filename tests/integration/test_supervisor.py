"""The process supervisor behind `streamify run`: readiness, restarts, orderly stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from streamify.core.supervisor import Child, ChildFailed, Supervisor

pytestmark = pytest.mark.integration

# A child that becomes "ready" by writing its pid into a file, then runs until signalled,
# recording the signal it got.
SCRIPT = """
import os, signal, sys, time
out = sys.argv[1]
def bye(sig, _):
    open(out + ".stopped", "a").write(f"{os.getpid()} {sig}\\n"); sys.exit(0)
signal.signal(signal.SIGTERM, bye)
time.sleep(0.2)
open(out, "w").write(str(os.getpid()))
while True: time.sleep(1)
"""


def child(tmp_path: Path, name: str) -> Child:
    marker = tmp_path / name

    async def ready() -> bool:
        return marker.exists()

    return Child(name=name, argv=[sys.executable, "-c", SCRIPT, str(marker)], ready=ready)


async def test_children_start_in_order_and_stop_newest_first(tmp_path):
    supervisor = Supervisor(log_dir=str(tmp_path / "logs"))
    await supervisor.start(child(tmp_path, "first"))
    assert (tmp_path / "first").exists() and not (tmp_path / "second").exists()
    await supervisor.start(child(tmp_path, "second"))
    pids = [c.process.pid for c in supervisor.children]
    await supervisor.stop_all()
    stopped = [(tmp_path / n).with_suffix(".stopped") for n in ("first", "second")]
    assert all(p.exists() for p in stopped)
    assert stopped[1].stat().st_mtime_ns <= stopped[0].stat().st_mtime_ns
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_child_that_dies_is_restarted(tmp_path):
    supervisor = Supervisor(max_backoff=0.2)
    await supervisor.start(child(tmp_path, "svc"))
    first_pid = supervisor.children[0].process.pid
    stop = asyncio.Event()
    watching = asyncio.create_task(supervisor.watch(stop))
    (tmp_path / "svc").unlink()
    os.kill(first_pid, signal.SIGKILL)
    for _ in range(200):
        if (tmp_path / "svc").exists():
            break
        await asyncio.sleep(0.05)
    restarted = supervisor.children[0]
    assert restarted.restarts == 1 and restarted.process.pid != first_pid
    stop.set()
    await watching
    await supervisor.stop_all()


async def test_a_child_that_exits_while_starting_is_reported(tmp_path):
    supervisor = Supervisor(log_dir=str(tmp_path / "logs"))

    async def never() -> bool:
        return False

    broken = Child(
        name="broken", argv=[sys.executable, "-c", "import sys; sys.exit(3)"], ready=never
    )
    with pytest.raises(ChildFailed, match="exited with status 3"):
        await supervisor.start(broken)
    await supervisor.stop_all()


SUPERVISING = """
import asyncio, sys
from streamify.core.supervisor import Child, Supervisor

async def main():
    supervisor = Supervisor()
    await supervisor.start(Child(name="child", argv=[sys.executable, "-c", sys.argv[1], sys.argv[2]]))
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_children_do_not_outlive_a_killed_supervisor(tmp_path: Path):
    """`streamify run` SIGKILLed (or OOM-killed) leaves no service holding its ports."""
    out = tmp_path / "child"
    supervisor = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SUPERVISING, SCRIPT, str(out)
    )
    for _ in range(200):
        if out.exists() and out.read_text():
            break
        await asyncio.sleep(0.05)
    child = int(out.read_text())
    supervisor.kill()
    await supervisor.wait()
    for _ in range(100):
        if (tmp_path / "child.stopped").exists():
            break
        await asyncio.sleep(0.05)
    assert (tmp_path / "child.stopped").read_text().split() == [
        str(child),
        str(int(signal.SIGTERM)),
    ]
