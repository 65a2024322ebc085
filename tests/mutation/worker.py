"""One pytest run per request, each in a fresh fork of this process (the runner starts one per job
slot). Importing pytest, hypothesis, grpc, protobuf and PyAV takes longer than most unit test
runs, so they are imported once here; nothing of `streamify` is, so every child imports the
module under test anew, from the overlay directory put first on its sys.path.

Requests and answers are JSON lines on stdin / stdout:
    {"overlay": DIR, "args": [pytest args], "first": "a,b", "oracle": FILE, "timeout": S, "probe": MODULE?}
    {"code": pytest exit code or null for a timeout, "seconds": S, "output": the end of it}
With "probe", the child prints that module's __file__ instead of running pytest.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time

PRELOAD = (
    "pytest",
    "pytest_asyncio",
    "hypothesis",
    "grpc",
    "google.protobuf",
    "protovalidate",
    "av",
)


def _child(job: dict, log: str) -> int:
    os.setsid()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.dont_write_bytecode = True  # a mutant must never be run from a stale .pyc
    sys.path.insert(0, job["overlay"])
    os.environ["STREAMIFY_MUTATION_FIRST"] = job["first"]
    os.environ["STREAMIFY_MUTATION_ORACLE"] = job.get("oracle", "")
    if job.get("probe"):
        print(importlib.import_module(job["probe"]).__file__)
        return 0
    import pytest

    return int(pytest.main(job["args"]))


def run(job: dict) -> dict:
    log = os.path.join(job["overlay"], "pytest.log")
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the loop below
        code = 3
        try:
            code = _child(job, log)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    code = None
    while time.monotonic() - start < job["timeout"]:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.01)
    else:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    seconds = time.monotonic() - start
    with open(log, errors="replace") as f:
        output = f.read()[-3000:]
    return {"code": code, "seconds": seconds, "output": output}


def main() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    loaded = [m for m in sys.modules if m == "streamify" or m.startswith("streamify.")]
    assert not loaded, f"the worker must not import the code under test: {loaded}"
    for line in sys.stdin:
        print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
