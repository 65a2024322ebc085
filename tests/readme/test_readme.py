"""The README, verbatim, in a fresh clone of the committed HEAD.

A user's shell: no STREAMIFY_* variables, no virtualenv, the default data dir and the default
ports (when one of them is taken on this machine, the README's documented flags instead). The
commands come out of README.md itself (tests/support/readme.py), so README and test cannot
drift: `./streamify run` set-up from nothing, the grpcurl tour, the error it documents, an
upload with the CLI and one by hand with grpcurl + curl, both followed to READY, their playback
URLs read by ffmpeg (a player we did not write), the by-hand video deleted until its link stops
playing, then Ctrl-C, nothing left running, and a second `./streamify run` in the same clone
that still has every other video.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.clips import make_clip
from tests.support.readme import (
    DEFAULT_PORTS,
    RunningCommand,
    alive,
    descendants,
    fresh_clone,
    port_taken,
    promised_output,
    readme_blocks,
    user_environment,
)
from tests.support.servers import free_port

pytestmark = pytest.mark.readme

BANNER = "Press Ctrl-C to stop."
# the first run builds .venv, node_modules and the page from nothing
FIRST_START_S, START_S, SCRIPT_S = 900, 300, 1200
BLOCKS = readme_blocks()


def ffmpeg_reads_every_segment(url: str) -> None:
    """The ffmpeg CLI decodes every stream of every variant (it sends Range on each object)."""
    decoded = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-map", "0", "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr[-3000:]


def http_status(url: str) -> int:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True, text=True
    )
    return int(out.stdout)


class Readme:
    """The clone, the user's environment and how `./streamify run` is started there."""

    def __init__(self, clone: Path) -> None:
        self.clone = clone
        self.env = user_environment()
        self.run_command = BLOCKS["two-commands"].splitlines()[0].split("#")[0].strip()
        self.gateway = "127.0.0.1:8080"
        taken = [p for p in DEFAULT_PORTS if port_taken(p)]
        if taken:  # the README: "Ports are flags (./streamify run --help) or STREAMIFY_* variables"
            base, gateway = free_port(), free_port()
            self.run_command += (
                f" --port {base} --upload-port {free_port()} --transcode-port {free_port()}"
                f" --gateway-port {gateway} --metrics-port 0"
            )
            for name in ("PORT", "MASTER_PORT", "VOLUME_PORT", "FILER_PORT"):
                self.env[f"STREAMIFY_SEAWEEDFS_{name}"] = str(free_port_below_55535())
            self.gateway = f"127.0.0.1:{gateway}"
        self.taken = taken

    def block(self, name: str) -> str:
        text = BLOCKS[name].replace("127.0.0.1:8080", self.gateway)
        if self.taken:
            text = text.replace(
                "./streamify upload ", f"./streamify upload --server {self.gateway} "
            )
        return text

    def token(self, *who: str) -> str:
        """`./streamify token ...` in the clone, e.g. ("--user", "alice")."""
        return subprocess.run(
            ["./streamify", "token", *who],
            cwd=self.clone,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def get_video(self, token: str, name: str) -> subprocess.CompletedProcess[str]:
        """GetVideo through the gateway with the clone's grpcurl."""
        return subprocess.run(
            [str(self.clone / ".venv/bin/grpcurl"), "-plaintext"]
            + ["-H", f"authorization: Bearer {token}", "-d", json.dumps({"name": name})]
            + [self.gateway, "streamify.v1.MetadataService/GetVideo"],
            capture_output=True,
            text=True,
        )

    def start(self, log_name: str, timeout: float) -> RunningCommand:
        running = RunningCommand(
            self.run_command, self.clone, self.env, self.clone.parent / log_name
        )
        try:
            running.wait_for(BANNER, timeout)
        except BaseException:
            running.kill()
            raise
        return running


def free_port_below_55535() -> int:
    while (port := free_port()) >= 55535:  # SeaweedFS also takes port + 10000
        pass
    return port


@pytest.fixture(scope="module")
def readme(tmp_path_factory) -> Readme:
    return Readme(fresh_clone(tmp_path_factory.mktemp("readme") / "streamify"))


def test_the_readme_names_its_two_commands_and_ci_runs_the_second():
    first, second = (line.split("#")[0].strip() for line in BLOCKS["two-commands"].splitlines())
    assert (first, second) == ("./streamify run", "./streamify test")
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert ci.rstrip().splitlines()[-1] == "exec ./streamify test"


def test_the_readme_verbatim_on_a_fresh_clone(readme: Readme):
    clone = readme.clone
    make_clip(clone / "holiday.mp4", width=1280, height=720, duration=8.0)
    make_clip(clone / "clip.mp4", width=640, height=360, duration=4.0)

    run = readme.start("run-1.log", FIRST_START_S)
    try:
        assert "data_dir" not in run.output() and "Traceback" not in run.output()
        errors_block = readme.block("errors")
        script = "\n".join(
            [
                "set -euo pipefail",
                readme.block("tour"),
                "set +e",
                f"( {errors_block}\n) > readme-errors.out 2>&1",
                'echo "@@ errors rc=$?"',
                "set -e",
                readme.block("upload-cli"),
                readme.block("upload-by-hand"),
                readme.block("follow-and-play"),
                'echo "@@ PLAYBACK_URL=$PLAYBACK_URL"',
            ]
        )
        tour = subprocess.run(
            ["bash", "-c", script],
            cwd=clone,
            env=readme.env,
            capture_output=True,
            text=True,
            timeout=SCRIPT_S,
        )
        output = tour.stdout + tour.stderr
        assert tour.returncode == 0, output[-6000:]

        # the tour: reflection lists every service; describe shows the API
        assert "streamify.v1.UploadService" in output and "rpc WatchVideo" in output
        assert '"title": "Renamed"' in output
        # the documented error, as documented
        assert "@@ errors rc=0" not in output
        printed = (clone / "readme-errors.out").read_text()
        for line in promised_output(errors_block):
            assert line in printed, printed
        # both uploads reached READY; their URLs play in ffmpeg
        cli_urls = re.findall(r"^playback: (\S+)$", output, re.M)
        assert len(cli_urls) >= 1, output[-4000:]
        by_hand = re.search(r"^@@ PLAYBACK_URL=(\S+)$", output, re.M).group(1)
        assert "#EXTM3U" in output and "codec_name=h264" in output
        for url in (cli_urls[-1], by_hand):
            assert "/grant." in url  # uploads are private unless told otherwise
            ffmpeg_reads_every_segment(url)
            assert (
                http_status(url.replace("/grant.", "/grant.1")) == 403
            )  # an edited grant opens nothing
            assert http_status(re.sub(r"/grant\.[^/]+", "", url)) == 403  # nor does none
        # deleting the by-hand video, as the README does: its link stops playing
        deleted = json.loads((clone / "upload.json").read_text())["video"]
        user_token = readme.token("--user", "alice")
        delete = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + readme.block("delete")],
            cwd=clone,
            env=readme.env
            | {
                "PATH": f"{clone / '.venv/bin'}:{readme.env['PATH']}",
                "TOKEN": user_token,
                "API": readme.gateway,
                "VIDEO": deleted,
                "PLAYBACK_URL": by_hand,
            },
            capture_output=True,
            text=True,
            timeout=SCRIPT_S,
        )
        assert delete.returncode == 0, delete.stdout + delete.stderr
        assert http_status(by_hand) == 403
        # without a token the API refuses, with the reason
        refused = subprocess.run(
            [
                str(clone / ".venv/bin/grpcurl"),
                "-plaintext",
                "-d",
                "{}",
                readme.gateway,
                "streamify.v1.MetadataService/ListVideos",
            ],
            capture_output=True,
            text=True,
        )
        assert refused.returncode != 0 and "Unauthenticated" in refused.stderr

        # Ctrl-C stops everything it started
        started = descendants(run.process.pid) | {run.process.pid}
        assert len(started) >= 10, (
            started
        )  # weed, 2+2 services, orchestrator, 2 workers, authz, page, envoy
        assert run.interrupt() == 0, run.output()[-3000:]
        assert not [pid for pid in started if alive(pid)], "processes left after Ctrl-C"
        assert "Traceback" not in run.output()
    finally:
        run.kill()

    # the same command again, in the same clone: every video is still there and plays
    names = [
        json.loads((clone / "video.json").read_text())["name"],
        re.findall(r"^video: (\S+)$", output, re.M)[-1],
    ]
    again = readme.start("run-2.log", START_S)
    try:
        service = readme.token("--service", "transcode")
        for name in names:
            got = readme.get_video(service, name)
            assert got.returncode == 0, got.stderr
            video = json.loads(got.stdout)
            if video["title"] == "Renamed":
                continue  # the tour's video never got a file
            assert video["status"] == "VIDEO_STATUS_READY", video
            ffmpeg_reads_every_segment(video["playback_url"])
        # and the deleted one stays deleted
        gone = readme.get_video(service, deleted)
        assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stderr
        assert again.interrupt() == 0
    finally:
        again.kill()
