"""Pytest fixtures that start REAL Redis and PostgreSQL servers as child processes.

Rules (see the fixtures below):
- A test that needs a server gets it from a fixture; nothing is skipped.
- The machine's shared servers (6379, 5432, ...) are never used implicitly: every server here
  listens on a free port picked at runtime, unless the environment names one explicitly with
  STREAMIFY_TEST_REDIS_URL / STREAMIFY_TEST_POSTGRES_URL.
- Every background process is our own child and is stopped by its own PID.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from sqlalchemy.engine import make_url

# Well-known ports of shared services: never hand these out, even if free right now.
_RESERVED_PORTS = frozenset({5432, 6379, 5672, 4222, 1883, 3306})
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (asked from the kernel), never a reserved one."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _RESERVED_PORTS:
            return port


def _stop_process(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send `sig` to this one PID, wait; SIGKILL (same PID) if it does not exit in time."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------------- Redis


class RedisServer:
    """A redis-server child process on a fixed 127.0.0.1 port; stop()/start() keep the port.

    persistent=False (default): `--save '' --appendonly no`, a restart comes back empty.
    persistent=True: append-only file with fsync on every write in a private directory, so a
    restart comes back with the data (like a failover to a replica, or a persistent Redis).
    """

    def __init__(self, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.persistent = persistent
        self._dir = Path(tempfile.mkdtemp(prefix="streamify-redis-"))
        self._log = self._dir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        if self.running:
            return
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persistent
            else ["--appendonly", "no"]
        )
        cmd = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            *persistence,
            "--dir",
            str(self._dir),
            "--daemonize",
            "no",
            "--logfile",
            str(self._log),
        ]
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._ping():
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited early:\n{_log_tail(self._log)}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server not ready in time:\n{_log_tail(self._log)}")
            time.sleep(0.02)

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")  # -LOADING while reading the AOF
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to our redis-server's PID and wait for it to exit."""
        if self._proc is not None:
            _stop_process(self._proc, signal.SIGTERM)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


class ExternalRedis:
    """A Redis named by STREAMIFY_TEST_REDIS_URL: usable, but not ours to stop or restart."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.port = urlsplit(url).port or 6379
        self.pid = None

    def start(self) -> None:
        raise RuntimeError("external Redis (STREAMIFY_TEST_REDIS_URL): use `private_redis`")

    def stop(self) -> None:
        raise RuntimeError("external Redis (STREAMIFY_TEST_REDIS_URL): use `private_redis`")

    def close(self) -> None:
        pass


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | ExternalRedis]:
    """A Redis for the whole session: STREAMIFY_TEST_REDIS_URL if set, else our own child.

    Do not stop it from a test (it may be external): tests that stop Redis use `private_redis`.
    """
    if url := os.environ.get("STREAMIFY_TEST_REDIS_URL"):
        yield ExternalRedis(url)
        return
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A dedicated, persistent redis-server for one test, which may stop() and start() it."""
    server = RedisServer(persistent=True)
    server.start()
    try:
        yield server
    finally:
        server.close()


# ---------------------------------------------------------------------------- PostgreSQL


def _pg_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(candidates[-1]).parent


class PostgresServer:
    """A PostgreSQL server: our own throw-away cluster, or the one named by a URL.

    `url` is a SQLAlchemy URL (postgresql+psycopg://...) of the maintenance database;
    `new_database()` creates a fresh empty database and returns its URL.
    """

    def __init__(self, url: str | None = None) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._created: list[str] = []
        if url is not None:  # external: created databases are dropped again in close()
            self._external = True
            self.url = (
                make_url(url)
                .set(drivername="postgresql+psycopg")
                .render_as_string(hide_password=False)
            )
        else:
            self._external = False
            self.url = self._start_cluster()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def _conninfo(self, url: str | None = None) -> str:
        """libpq URI for psycopg from a SQLAlchemy URL."""
        sa = make_url(url or self.url).set(drivername="postgresql")
        return sa.render_as_string(hide_password=False)

    def _start_cluster(self) -> str:
        bindir = _pg_bindir()
        self._dir = Path(tempfile.mkdtemp(prefix="streamify-pg-"))
        data, log = self._dir / "data", self._dir / "postgres.log"
        # initdb refuses to run as root: run the server binaries as the `postgres` system user.
        # Popen(user=...) does setuid in the child before exec, so the PID we hold is postgres's
        # own (runuser would sit in between and turn our SIGINT into SIGTERM + SIGKILL).
        as_user: dict[str, object] = {}
        if os.geteuid() == 0:
            as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
            shutil.chown(self._dir, "postgres", "postgres")
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale",
                "C.UTF-8",
            ],
            check=True,
            capture_output=True,
            cwd=self._dir,
            env=env,
            **as_user,  # type: ignore[arg-type]
        )
        port = free_port()
        with open(log, "wb") as logf:
            self._proc = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-k",
                    str(self._dir),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                env=env,
                **as_user,  # type: ignore[arg-type]
            )
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                psycopg.connect(self._conninfo(url), connect_timeout=2).close()
                return url
            except psycopg.OperationalError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"postgres did not start:\n{_log_tail(log)}") from None
                time.sleep(0.05)

    def new_database(self) -> str:
        """CREATE DATABASE with a unique name; returns its SQLAlchemy URL."""
        name = f"streamify_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def close(self) -> None:
        if self._external:
            with psycopg.connect(self._conninfo(), autocommit=True) as conn:
                for name in self._created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        if self._proc is not None:
            _stop_process(self._proc, signal.SIGINT)  # SIGINT = fast shutdown
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """PostgreSQL for the session: STREAMIFY_TEST_POSTGRES_URL if set, else our own cluster."""
    server = PostgresServer(os.environ.get("STREAMIFY_TEST_POSTGRES_URL") or None)
    try:
        yield server
    finally:
        server.close()


# ------------------------------------------------------------------------------ SeaweedFS


class ExternalS3:
    """An S3 endpoint named by STREAMIFY_TEST_S3_ENDPOINT (+ _ACCESS_KEY / _SECRET_KEY)."""

    def __init__(self, endpoint_url: str, access_key: str, secret_key: str) -> None:
        self.endpoint_url = endpoint_url
        self.access_key = access_key
        self.secret_key = secret_key
        self.pid = None


class SeaweedFSServer:
    """What the `seaweedfs` fixture yields: an S3 endpoint with signatures enforced and two
    fresh buckets (unique names, so an external endpoint can be shared)."""

    def __init__(self, server: object) -> None:
        self._server = server
        suffix = uuid.uuid4().hex[:8]
        self.uploads_bucket = f"streamify-test-uploads-{suffix}"
        self.media_bucket = f"streamify-test-media-{suffix}"

    @property
    def endpoint_url(self) -> str:
        return self._server.endpoint_url  # type: ignore[attr-defined]

    @property
    def access_key(self) -> str:
        return self._server.access_key  # type: ignore[attr-defined]

    @property
    def secret_key(self) -> str:
        return self._server.secret_key  # type: ignore[attr-defined]

    @property
    def pid(self) -> int | None:
        return self._server.pid  # type: ignore[attr-defined]

    def settings_overrides(self) -> dict[str, object]:
        """Settings(**this) points a process at this endpoint and its test buckets."""
        return {
            "s3_endpoint_url": self.endpoint_url,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
            "s3_region": "us-east-1",
            "s3_addressing_style": "path",
            "uploads_bucket": self.uploads_bucket,
            "media_bucket": self.media_bucket,
        }


def _distinct_free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        if (port := free_port()) not in ports:
            ports.append(port)
    return ports


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFSServer]:
    """S3 for the session: STREAMIFY_TEST_S3_ENDPOINT if set, else our own `weed server` on
    free ports in a fresh directory, stopped by its PID at the end (that takes ~15 s)."""
    from streamify.core.config import Settings
    from streamify.core.seaweed import SeaweedFS, SeaweedPorts
    from streamify.core.storage import ensure_buckets, make_s3_client

    if endpoint := os.environ.get("STREAMIFY_TEST_S3_ENDPOINT"):
        external = ExternalS3(
            endpoint,
            os.environ.get("STREAMIFY_TEST_S3_ACCESS_KEY", ""),
            os.environ.get("STREAMIFY_TEST_S3_SECRET_KEY", ""),
        )
        server = SeaweedFSServer(external)
        client = make_s3_client(Settings(**server.settings_overrides()))  # type: ignore[arg-type]
        ensure_buckets(client, server.uploads_bucket, server.media_bucket)
        yield server
        return
    directory = Path(tempfile.mkdtemp(prefix="streamify-seaweedfs-"))
    weed = SeaweedFS(
        directory,
        SeaweedPorts(*_distinct_free_ports(8)),
        access_key=f"TEST{uuid.uuid4().hex[:12].upper()}",
        secret_key=uuid.uuid4().hex + uuid.uuid4().hex,
    )
    server = SeaweedFSServer(weed)
    weed.buckets = (server.uploads_bucket, server.media_bucket)
    weed.start()
    try:
        yield server
    finally:
        weed.stop()
        shutil.rmtree(directory, ignore_errors=True)


# ------------------------------------------------------------------- SQS stand-in (moto)


class MotoServer:
    """moto's server mode as a child process: a local STAND-IN for AWS SQS (API-compatible
    enough for the queue adapter's tests; not a performance or durability model of SQS)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="streamify-moto-"))
        self._log = self._dir / "moto.log"
        binary = Path(sys.executable).parent / "moto_server"
        with open(self._log, "wb") as logf:
            self._proc = subprocess.Popen(
                [
                    str(binary if binary.exists() else "moto_server"),
                    "-H",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                ],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(
                        f"moto_server did not start:\n{_log_tail(self._log)}"
                    ) from None
                time.sleep(0.05)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc.poll() is None else None

    def close(self) -> None:
        _stop_process(self._proc, signal.SIGTERM)
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="session")
def sqs_server() -> Iterator[MotoServer]:
    """A moto server (SQS stand-in) for the session; clients need any AWS credentials, e.g.
    AWS_ACCESS_KEY_ID=testing (see the queue tests)."""
    server = MotoServer()
    try:
        yield server
    finally:
        server.close()
