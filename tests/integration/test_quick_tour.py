"""The README's quick tour, run as written: `streamify run`, a minted token, grpcurl calls."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_below(limit: int) -> int:
    """A free port whose +10000 neighbour (SeaweedFS's gRPC port) is a valid port too."""
    while (port := free_port()) >= limit:
        pass
    return port


@pytest.fixture
def streamify_run(tmp_path):
    port = free_port()
    env = {**os.environ, "STREAMIFY_DATA_DIR": str(tmp_path), "STREAMIFY_LOG_LEVEL": "WARNING"}
    for name in ("SEAWEEDFS_PORT", "SEAWEEDFS_MASTER_PORT", "SEAWEEDFS_VOLUME_PORT", "SEAWEEDFS_FILER_PORT"):
        env[f"STREAMIFY_{name}"] = str(free_port_below(55535))
    env.pop("STREAMIFY_JWT_SECRET", None)
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen([BIN / "streamify", "run", "--port", str(port), "--upload-port", str(free_port()),
                             "--metrics-port", "0"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    target = f"127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"streamify run exited: {(tmp_path / 'run.log').read_text()}")
            if "Press Ctrl-C" in (tmp_path / "run.log").read_text():
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"streamify run never got ready: {(tmp_path / 'run.log').read_text()}")
        yield target, env, tmp_path / "run.log"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
        log.close()


def grpcurl(*args: str, token: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("grpcurl") or str(BIN / "grpcurl")
    headers = ["-H", f"authorization: Bearer {token}"] if token else []
    result = subprocess.run([exe, "-plaintext", *headers, *args], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_quick_tour_with_grpcurl_and_a_minted_token(streamify_run):
    target, env, log = streamify_run
    assert "Dev token" in log.read_text() and "development" in log.read_text().lower()
    services = grpcurl(target, "list").stdout.split()
    assert "streamify.v1.MetadataService" in services and "grpc.health.v1.Health" in services
    described = grpcurl(target, "describe", "streamify.v1.MetadataService").stdout
    assert "rpc WatchVideo" in described

    token = subprocess.run([BIN / "streamify", "token", "--user", "alice"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    created = json.loads(grpcurl("-d", '{"video": {"title": "Hello"}}', target,
                                 "streamify.v1.MetadataService/CreateVideo", token=token).stdout)
    assert created["status"] == "VIDEO_STATUS_UPLOADING" and created["owner"] == "users/alice"
    name = created["name"]
    got = json.loads(grpcurl("-d", json.dumps({"name": name}), target,
                             "streamify.v1.MetadataService/GetVideo", token=token).stdout)
    assert got["title"] == "Hello"
    listed = json.loads(grpcurl("-d", "{}", target, "streamify.v1.MetadataService/ListVideos", token=token).stdout)
    assert [v["name"] for v in listed["videos"]] == [name]
    updated = json.loads(grpcurl("-d", json.dumps({"video": {"name": name, "title": "Hello again"},
                                                   "update_mask": {"paths": ["title"]}}),
                                 target, "streamify.v1.MetadataService/UpdateVideo", token=token).stdout)
    assert updated["title"] == "Hello again"
    watch = grpcurl("-max-time", "2", "-d", json.dumps({"name": name}), target,
                    "streamify.v1.MetadataService/WatchVideo", token=token, check=False)
    assert '"title": "Hello again"' in watch.stdout

    refused = grpcurl("-d", json.dumps({"name": name}), target, "streamify.v1.MetadataService/GetVideo", check=False)
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr
