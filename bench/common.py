"""Helpers every benchmark script shares (run as `python bench/X.py`, so `bench/` is on sys.path)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


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
