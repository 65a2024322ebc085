"""Starts the whole local mesh exactly as the README does (`streamify run`), on free ports and a
temporary data dir, for end-to-end tests; stops it by PID."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port


def free_port_run(length: int, limit: int = 55535) -> int:
    """The first of `length` consecutive free ports (all below `limit`)."""
    for _ in range(200):
        start = free_port()
        if start + length >= limit:
            continue
        ok = True
        for port in range(start, start + length):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return start
    raise RuntimeError("no run of free ports found")


@dataclass
class LocalMesh:
    gateway: str  # host:port of Envoy
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://{self.gateway}"

    def token(self, user: str = "e2e") -> str:
        return subprocess.run(
            [sys.executable, "-m", "streamify.cli", "token", "--user", user],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def log(self) -> str:
        return (self.data_dir / "run.log").read_text(errors="replace")

    def upload(self, token: str, path: Path, title: str, state_dir: Path, timeout: float) -> dict:
        """`streamify upload FILE --wait --json` as a user runs it, against the gateway: READY
        (exit 0) or FAILED (exit 4); returns its JSON summary."""
        proc = subprocess.run(
            [sys.executable, "-m", "streamify.cli", "upload", str(path), "--title", title]
            + ["--wait", "--json", "--quiet", "--server", self.gateway, "--token", token],
            env={**self.env, "STREAMIFY_UPLOAD_STATE_DIR": str(state_dir)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode in (0, 4), (
            f"upload {path.name}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
        result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
        return result


def http_status(url: str) -> int:
    """The status a plain GET of `url` gets (the body is read and dropped)."""
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@contextlib.contextmanager
def local_mesh(data_dir: Path, *, workers: int = 2):
    env = {**os.environ, "STREAMIFY_DATA_DIR": str(data_dir), "STREAMIFY_LOG_LEVEL": "WARNING"}
    for name in ("STREAMIFY_SIGNING_KEYS", "STREAMIFY_TRUSTED_KEYS"):
        env.pop(name, None)
    for name in (
        "SEAWEEDFS_PORT",
        "SEAWEEDFS_MASTER_PORT",
        "SEAWEEDFS_VOLUME_PORT",
        "SEAWEEDFS_FILER_PORT",
    ):
        env[f"STREAMIFY_{name}"] = str(free_port_run(1))
    grpc_base, gateway = free_port_run(14), free_port_run(4)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "run.log", "w")  # noqa: SIM115 - the process writes to it; closed in finally
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamify.cli",
            "run",
            "--port",
            str(grpc_base),
            "--upload-port",
            str(grpc_base + 1),
            "--transcode-port",
            str(grpc_base + 2),
            "--gateway-port",
            str(gateway),
            "--metrics-port",
            "0",
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    mesh = LocalMesh(f"127.0.0.1:{gateway}", data_dir, env, process)
    try:
        for _ in range(1800):
            if process.poll() is not None:
                raise RuntimeError(f"streamify run exited:\n{mesh.log()[-3000:]}")
            if "Press Ctrl-C" in mesh.log():
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"streamify run never got ready:\n{mesh.log()[-3000:]}")
        yield mesh
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
