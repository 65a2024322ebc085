"""The real Streamify transcode path for bench/transcode.py: processes, storage, gRPC.

Starts, with free ports and one temp STREAMIFY_DATA_DIR (SQLite, database queue): the embedded
SeaweedFS (streamify.core.seaweed), `streamify serve metadata`, `streamify serve upload` and
`streamify serve transcode` (the orchestrator, which consumes the "video uploaded" queue). Per
run it starts N `streamify worker --slots 1` processes, uploads the source with `streamify
upload FILE --json --quiet` (the upload path: the Upload service queues the job), polls
GetTranscodeJob until the job ends, stops the workers by PID and returns: wall = the job's
create_time -> end_time (READY), time_to_first_playable as the orchestrator recorded it, CPU of
the workers and their task processes (RUSAGE_CHILDREN, they are our children) plus the
orchestrator's and SeaweedFS's (/proc/<pid>/stat deltas), and the task processes' RSS.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from common import cpu_seconds, free_port, log, stop_process, wait_ready

from streamify.core.config import Settings
from streamify.core.seaweed import SeaweedFS, SeaweedPorts
from streamify.core.storage import make_s3_client
from streamify.v1 import transcode_service_pb2 as tapi
from streamify.v1 import transcode_service_pb2_grpc
from tests.support import keys

BIN = Path(sys.executable).parent
UPLOADS, MEDIA = "streamify-uploads", "streamify-media"


proc_cpu = cpu_seconds  # the name transcode.py imports


@dataclass
class JobRun:
    wall: float  # job create -> end (server timestamps)
    first_playable: float
    worker_cpu: float  # workers + their task processes
    other_cpu: float  # orchestrator + SeaweedFS + metadata + upload during the job
    upload_seconds: float
    state: str
    tasks: int
    video_id: str


class System:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ports: set[int] = set()
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.weed: SeaweedFS | None = None
        self.logs = tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.token = keys.token("alice", ttl=24 * 3600)
        self.service_token = keys.token("operator", kind="service", ttl=24 * 3600)
        self.count = 0

    def _serve(self, name: str, env: dict[str, str]) -> str:
        port, metrics = free_port(self.ports), free_port(self.ports)
        cmd = [
            str(BIN / "streamify"),
            "serve",
            name,
            "--port",
            str(port),
            "--metrics-port",
            str(metrics),
        ]
        log(f"$ {shlex.join(cmd)}")
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        out.close()
        self.procs.append((name, proc))
        wait_ready(f"127.0.0.1:{port}", proc, timeout=90)
        return f"127.0.0.1:{port}"

    def start(self) -> None:
        access, secret = "BENCH" + secrets.token_hex(6).upper(), secrets.token_urlsafe(24)
        data = self.tmp / "data"
        p = self.ports
        self.weed = SeaweedFS(
            data / "seaweedfs",
            SeaweedPorts.from_http(free_port(p), free_port(p), free_port(p), free_port(p)),
            access,
            secret,
            buckets=(UPLOADS, MEDIA),
        )
        log(f"$ {shlex.join(self.weed.command(self.weed.data_dir / 's3.json'))}")
        self.weed.start()
        overrides = self.weed.settings_overrides()
        self.settings = Settings(**overrides)  # type: ignore[arg-type]
        self.s3 = make_s3_client(self.settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
        env |= {f"STREAMIFY_{k.upper()}": str(v) for k, v in overrides.items()}
        env |= {
            "STREAMIFY_EMBEDDED": "true",
            "STREAMIFY_DATA_DIR": str(data),
            **keys.SECRET_ENV,
            "STREAMIFY_LOG_LEVEL": "WARNING",
            "STREAMIFY_UPLOADS_BUCKET": UPLOADS,
            "STREAMIFY_MEDIA_BUCKET": MEDIA,
        }
        self.env = env
        metadata = self._serve("metadata", env)
        self.env = env = env | {"STREAMIFY_METADATA_TARGET": metadata}
        self.upload_target = self._serve("upload", env)
        self.orchestrator = self._serve("transcode", env)

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            stop_process(proc)
        if self.weed is not None:
            self.weed.stop()

    def other_pids(self) -> list[int]:
        pids = [proc.pid for _, proc in self.procs]
        if self.weed is not None and self.weed.pid:
            pids.append(self.weed.pid)
        return pids

    def start_workers(self, n: int, show: bool) -> list[subprocess.Popen]:
        workers = []
        for i in range(n):
            cmd = [
                str(BIN / "streamify"),
                "worker",
                "--orchestrator",
                self.orchestrator,
                "--slots",
                "1",
            ]
            if show:
                log(f"$ {shlex.join(cmd)}")
            out = open(self.logs / f"worker-{i}.log", "ab")  # noqa: SIM115
            workers.append(
                subprocess.Popen(
                    cmd,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
            out.close()
        return workers

    def upload(self, source: Path, show: bool) -> tuple[str, float]:
        self.count += 1
        cmd = [
            str(BIN / "streamify"),
            "upload",
            str(source),
            "--json",
            "--quiet",
            "--title",
            f"bench {self.count}",
            "--server",
            self.upload_target,
        ]
        if show:
            log(f"$ STREAMIFY_TOKEN=... {shlex.join(cmd)}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
        env |= {
            "STREAMIFY_TOKEN": self.token,
            "STREAMIFY_UPLOAD_STATE_DIR": str(self.tmp / f"state-{self.count}"),
        }
        now = time.time()
        os.utime(source, (now, now))  # a new mtime: the CLI's resume key is path+size+mtime
        t0 = time.monotonic()
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"upload failed ({p.returncode}): {p.stdout}\n{p.stderr}")
        result = json.loads(p.stdout.strip().splitlines()[-1])
        if result.get("already_completed") or result.get("resumed"):
            raise RuntimeError(f"the upload CLI reused an earlier upload: {result}")
        return result["video"].removeprefix("videos/"), time.monotonic() - t0

    def wait_job(self, video_id: str, timeout: float = 1800) -> tapi.TranscodeJob:
        md = [("authorization", f"Bearer {self.service_token}")]
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.orchestrator) as ch:
            stub = transcode_service_pb2_grpc.TranscodeServiceStub(ch)
            while time.monotonic() < deadline:
                try:
                    job = stub.GetTranscodeJob(
                        tapi.GetTranscodeJobRequest(name=f"transcodeJobs/{video_id}"),
                        metadata=md,
                        timeout=10,
                    )
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.NOT_FOUND:
                        raise
                    time.sleep(0.2)
                    continue
                if job.state in (
                    tapi.JOB_STATE_SUCCEEDED,
                    tapi.JOB_STATE_FAILED,
                    tapi.JOB_STATE_CANCELLED,
                ):
                    return job
                time.sleep(0.2)
        raise RuntimeError(f"job {video_id} did not end in {timeout} s")

    def download(self, video_id: str, dest: Path) -> None:
        prefix = f"videos/{video_id}/"
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=MEDIA, Prefix=prefix):
            for obj in page.get("Contents", []):
                path = dest / obj["Key"][len(prefix) :]
                path.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(MEDIA, obj["Key"], str(path))

    def delete(self, video_id: str) -> None:
        """The job's outputs and every source (runs do not overlap)."""
        for bucket, prefix in ((MEDIA, f"videos/{video_id}/"), (UPLOADS, "")):
            paginator = self.s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
