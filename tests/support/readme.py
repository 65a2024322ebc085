"""The README as executable truth: its runnable blocks, a fresh clone, a user's environment.

A block the readme tier runs is marked in README.md by a comment right before its fence:

    <!-- readme-test: NAME -->
    ```bash
    ...
    ```

The test runs the block's text as written; the `# ...` lines in it are comments to bash and,
for a block documented to fail, the output the README promises.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"<!-- readme-test: ([a-z0-9-]+)[^>]*-->\n```bash\n(.*?)\n```", re.S)

# What `./streamify run` listens on by default (README, MeshPorts, Settings.seaweedfs_*):
# the gateway and its neighbours, the services, SeaweedFS (+10000 for its gRPC ports), metrics.
GATEWAY_PORTS = (8080, 8081, 8082, 8083)
SERVICE_PORTS = (50051, 50061, 50052, 50062, 50053)
STORAGE_PORTS = (8333, 9333, 8888, 18080, 18333, 19333, 18888, 28080)
METRICS_PORTS = tuple(range(9464, 9464 + 5))
DEFAULT_PORTS = GATEWAY_PORTS + SERVICE_PORTS + STORAGE_PORTS + METRICS_PORTS


def readme_blocks(text: str | None = None) -> dict[str, str]:
    text = (REPO / "README.md").read_text() if text is None else text
    return {name: body for name, body in _BLOCK.findall(text)}


def promised_output(block: str) -> list[str]:
    """The README's `# ...` lines under the last command of a block: what it prints."""
    lines = block.splitlines()
    tail: list[str] = []
    for line in reversed(lines):
        if not line.startswith("# "):
            break
        tail.append(line[2:])
    return list(reversed(tail))


def fresh_clone(dest: Path) -> Path:
    """A clone of the committed HEAD, as a user gets it (no venv, no node_modules, no state)."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(dest)], check=True)
    return dest


def user_environment() -> dict[str, str]:
    """The test runner's environment as a user's shell would have it: no STREAMIFY_* settings,
    no virtualenv, nothing of this checkout on PATH."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_") and k != "VIRTUAL_ENV"
    }
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(REPO))]
    env["PATH"] = os.pathsep.join(path)
    return env


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc), so a test can check nothing is left."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class RunningCommand:
    """A README command run in the background in its own process group, as a terminal runs a
    foreground job; `interrupt()` is Ctrl-C (SIGINT to the whole group)."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 - closed in wait()
        self.process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the command exited ({self.process.returncode}):\n{self.output()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} after {timeout:.0f} s:\n{self.output()[-4000:]}")
            time.sleep(0.2)

    def interrupt(self, timeout: float = 120) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        """Clean-up after a failure: Ctrl-C first (an orderly stop), then SIGKILL to whatever
        of the job is left, its own session's processes included."""
        if self.process.poll() is None:
            left = descendants(self.process.pid)
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            for pid in left:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        self._log.close()
