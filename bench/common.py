"""Helpers every benchmark script shares (run as `python bench/X.py`, so `bench/` is on sys.path)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
# The repository root, so a benchmark deploys with the test deployments' fixed token keys and
# secrets (tests.support.keys) like the tests do.
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.append(_REPO)


def log(msg: str = "") -> None:
    print(msg, flush=True)


def free_port(avoid: set[int] | None = None) -> int:
    """A free port whose +10000 is also free and below 65536 (SeaweedFS's gRPC convention);
    ports handed out are added to `avoid` so two calls never return the same one."""
    avoid = avoid if avoid is not None else set()
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 55535 or port in avoid or port + 10000 in avoid:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        avoid.update({port, port + 10000})
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads); 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM by its own PID, SIGKILL if it is still there after `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(target: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until the gRPC server `proc` started answers on `target`; RuntimeError if it exits or
    `timeout` seconds pass."""
    import grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as ch:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server on {target} exited with {proc.returncode}")
            try:
                grpc.channel_ready_future(ch).result(timeout=0.5)
                return
            except grpc.FutureTimeoutError:
                pass
    raise RuntimeError(f"server on {target} not ready after {timeout}s")


def ensure_command(command: str, package: str) -> str:
    """The path of `command`, installing Debian's `package` first when it is missing."""
    path = shutil.which(command)
    if path:
        return path
    apt = ["apt-get", "install", "-y", package]
    if os.geteuid() != 0 and shutil.which("sudo"):
        apt = ["sudo", *apt]
    log(f"{command} not found: running `{' '.join(apt)}`")
    if subprocess.run(apt, stdout=subprocess.DEVNULL).returncode != 0:
        log("  install failed; running `apt-get update` and retrying")
        subprocess.run([*apt[:-3], "update"], stdout=subprocess.DEVNULL, check=False)
        subprocess.run(apt, stdout=subprocess.DEVNULL, check=True)
    path = shutil.which(command)
    if not path:
        sys.exit(f"{command} still missing after installing {package}")
    return path
