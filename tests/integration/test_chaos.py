"""Chaos under load: while locust users watch and upload through the Envoy gateway, one Metadata
replica, one Upload replica (SIGKILL, the supervisor restarts them) and one transcode worker are
killed. No playback request may fail (Envoy retries reads on the other replica; clients retry
writes with the same request_id) and every upload CompleteUpload accepted must end READY.

A short version of `loadtest/run.sh --chaos` (docs/performance.md, "Load tests (locust)"):
8 users (3 of them uploading) for 30 s against a mesh this test starts on free ports."""

from __future__ import annotations

import json

import pytest

from tests.support.chaos import load_with_chaos, running_mesh

pytestmark = pytest.mark.integration


def test_replicas_and_a_worker_die_under_load_without_failed_playback_or_lost_uploads(tmp_path):
    with running_mesh(tmp_path / "mesh") as mesh:
        rc, summary, output = load_with_chaos(
            mesh,
            tmp_path / "report",
            "--users",
            "8",
            "--spawn-rate",
            "8",
            "--uploaders",
            "3",
            "--duration",
            "30s",
            "--seed-videos",
            "2",
            "--ready-timeout",
            "240",
        )
        assert mesh.process.poll() is None, "the supervisor itself must survive"
        run_log = (mesh.data_dir / "run.log").read_text(errors="replace")

    assert summary, f"the load test wrote no summary (rc={rc}):\n{output[-4000:]}"
    brief = json.dumps(
        {
            k: summary[k]
            for k in (
                "requests",
                "failures",
                "playback_failures",
                "uploads",
                "client_counters",
                "chaos",
            )
        },
        indent=1,
    )
    # The kills happened, to this mesh's processes (children of its supervisor), and each came back.
    events = summary["chaos"]["events"]
    assert not summary["chaos"]["errors"], brief
    assert [e["kind"] for e in events] == ["metadata", "upload", "worker"], brief
    assert all(e["new_pid"] and e["new_pid"] != e["pid"] for e in events), brief
    for name in ("metadata-0", "upload-0"):
        assert f"{name} exited with status -9; restarting" in run_log, run_log[-3000:]
    assert "worker-" in run_log and "exited with status -9" in run_log

    # Load really ran, on both paths.
    by_name = {r["name"]: r for r in summary["stats"]}
    assert by_name["/media segment"]["requests"] > 50, brief
    assert by_name["MetadataService/GetVideo"]["requests"] > 5, brief
    assert summary["uploads"]["completed"] >= 3, brief

    # The promise: zero failed playback requests, zero lost uploads.
    assert summary["playback_failures"] == 0, brief
    assert summary["uploads"]["lost"] == 0, brief
    assert summary["uploads"]["ready"] == summary["uploads"]["completed"], brief
