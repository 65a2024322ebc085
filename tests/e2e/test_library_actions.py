"""The owner's actions on the library, through the page in Chromium: rename and publish a video,
delete it while it plays, be told clearly when an edit raced another one (stale etag), and retry
a FAILED transcode.

The page's word is checked against a second source of truth: GetVideo / GetTranscodeJob with the
Python stubs over native gRPC through the same gateway, and anonymous reads of `/media`.
Videos are uploaded with the `streamify upload` CLI as the page's user (see conftest.py).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import time

import pytest

from tests.e2e.browser import chromium
from tests.e2e.test_browser import READY_TIMEOUT_MS, STATUS, open_page, record_statuses, screenshot
from tests.support.clips import make_clip
from tests.support.local_mesh import http_status

pytestmark = pytest.mark.e2e

GRANT = re.compile(r"/grant\.[^/]+/")


# ---------------------------------------------------------------------------- second source


class Api:
    """MetadataService and TranscodeService as the page's user, native gRPC via the gateway."""

    def __init__(self, gateway: str, token: str) -> None:
        import grpc

        from streamify.v1 import metadata_service_pb2_grpc, transcode_service_pb2_grpc

        self.channel = grpc.insecure_channel(gateway)
        self.metadata = metadata_service_pb2_grpc.MetadataServiceStub(self.channel)
        self.transcode = transcode_service_pb2_grpc.TranscodeServiceStub(self.channel)
        self.auth = (("authorization", f"Bearer {token}"),)

    def get(self, name: str):
        from streamify.v1 import metadata_service_pb2 as meta

        return self.metadata.GetVideo(
            meta.GetVideoRequest(name=name), metadata=self.auth, timeout=10
        )

    def job(self, name: str):
        from streamify.v1 import transcode_service_pb2 as tapi

        job = name.replace("videos/", "transcodeJobs/")
        return self.transcode.GetTranscodeJob(
            tapi.GetTranscodeJobRequest(name=job), metadata=self.auth, timeout=10
        )

    def rename(self, name: str, title: str):
        from google.protobuf.field_mask_pb2 import FieldMask

        from streamify.v1 import metadata_service_pb2 as meta
        from streamify.v1.video_pb2 import Video

        request = meta.UpdateVideoRequest(
            video=Video(name=name, title=title), update_mask=FieldMask(paths=["title"])
        )
        return self.metadata.UpdateVideo(request, metadata=self.auth, timeout=10)

    def eventually(self, name: str, check, timeout: float = 10.0):
        """GetVideo until `check(video)` holds: replicas cache reads for about a second."""
        deadline = time.monotonic() + timeout
        while True:
            video = self.get(name)
            if check(video) or time.monotonic() > deadline:
                return video
            time.sleep(0.3)


@pytest.fixture
def api(mesh, mesh_token):
    client = Api(mesh.gateway, mesh_token)
    with client.channel:
        yield client


# ---------------------------------------------------------------------------------- videos


@pytest.fixture(scope="module")
def videos(mesh, mesh_token, tmp_path_factory) -> dict[str, str]:
    """{"clip": a READY video, "broken" and "stale": FAILED ones (random bytes named .mp4)}."""
    work = tmp_path_factory.mktemp("library-actions")
    clip = make_clip(work / "actions.mp4", width=640, height=360, duration=12.0)
    files = {"clip": (clip, "e2e actions clip")}
    for key in ("broken", "stale"):
        junk = work / f"{key}.mp4"
        junk.write_bytes(os.urandom(256 * 1024))
        files[key] = (junk, f"e2e {key}")
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(files)) as pool:
        results = {
            key: pool.submit(
                mesh.upload, mesh_token, path, title, work / f"state-{key}", READY_TIMEOUT_MS / 1000
            )
            for key, (path, title) in files.items()
        }
        results = {key: f.result() for key, f in results.items()}
    assert results["clip"]["video_status"] == "READY", results["clip"]
    for key in ("broken", "stale"):
        assert results[key]["video_status"] == "FAILED", results[key]
    return {key: r["video"] for key, r in results.items()}


def card(page, name: str):
    return page.locator(f"#library li[data-name='{name}']")


def alert_text(page) -> str:
    page.wait_for_selector("#alert:not([hidden])", timeout=15_000)
    return page.inner_text("#alert")


# ----------------------------------------------------------------------------------- tests


def test_rename_publish_and_delete_while_playing(videos, api, mesh_url, mesh_token):
    from streamify.v1.video_pb2 import Visibility

    name = videos["clip"]
    with chromium() as browser:
        page, logs = open_page(browser, mesh_url, mesh_token)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
        item = card(page, name)
        item.locator(".card").click()
        page.wait_for_function(
            "window.streamify && window.streamify.hls && window.streamify.video.currentTime > 1",
            timeout=60_000,
        )
        private_src = page.evaluate("() => window.streamify.src")
        assert GRANT.search(private_src), f"a private video plays through a grant: {private_src}"
        bare = GRANT.sub("/", private_src)
        assert http_status(bare) == 403, "private: no grant, no media"

        # Rename and publish in the page.
        item.get_by_role("button", name="Edit “e2e actions clip”").click()
        item.get_by_label("Title", exact=True).fill("Renamed in the page")
        item.get_by_label("Visibility", exact=True).select_option(label="Public (listed)")
        item.get_by_role("button", name="Save").click()
        page.wait_for_function(
            f"""document.querySelector("#library li[data-name='{name}'] .card .title")
                 .textContent === 'Renamed in the page'""",
            timeout=15_000,
        )
        assert item.locator("form").is_hidden()
        assert page.inner_text("#now-title") == "Renamed in the page"
        assert page.locator("#alert").is_hidden(), page.inner_text("#alert")

        # The API says the same.
        video = api.eventually(name, lambda v: v.title == "Renamed in the page")
        assert video.title == "Renamed in the page"
        assert Visibility.Name(video.visibility) == "VISIBILITY_PUBLIC"
        assert not GRANT.search(video.playback_url), video.playback_url
        assert video.playback_url == bare
        # Anyone may now read it without a grant (the gateway caches visibility for seconds).
        deadline = time.monotonic() + 20
        while (status := http_status(video.playback_url)) != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert status == 200, f"{video.playback_url} -> {status}"
        # The player plays on from the URL it has: its grant keeps working.
        assert page.evaluate("() => window.streamify.src") == private_src
        t = page.evaluate("() => window.streamify.video.currentTime")
        page.wait_for_function(f"window.streamify.video.currentTime > {t} + 0.5", timeout=20_000)
        screenshot(page, "e2e-renamed.png")

        # Private again: the player switches to a URL with a grant (the bare one stops working).
        item.get_by_role("button", name="Edit “Renamed in the page”").click()
        item.get_by_label("Visibility", exact=True).select_option(label="Private (only you)")
        item.get_by_role("button", name="Save").click()
        page.wait_for_function(
            "window.streamify.src && window.streamify.src.includes('/grant.') && "
            f"window.streamify.src !== {json.dumps(private_src)}",
            timeout=15_000,
        )
        page.wait_for_function(
            "window.streamify.hls && window.streamify.video.currentTime > 1", timeout=60_000
        )
        video = api.eventually(name, lambda v: v.visibility == Visibility.VISIBILITY_PRIVATE)
        assert Visibility.Name(video.visibility) == "VISIBILITY_PRIVATE"
        assert video.title == "Renamed in the page"  # only visibility was in the mask

        # Delete it while it plays: confirm(), gone from the library, the player stops.
        assert page.evaluate(
            "() => !window.streamify.video.paused && !window.streamify.video.ended"
        )
        item.get_by_role("button", name="Delete “Renamed in the page”").click()
        item.wait_for(state="detached", timeout=15_000)
        assert dialogs == ["Delete “Renamed in the page”? This cannot be undone."], dialogs
        page.wait_for_function(
            "window.streamify.hls === null && window.streamify.src === null", timeout=5_000
        )
        assert page.locator("#now").is_hidden()
        assert page.evaluate(
            "() => window.streamify.video.paused || !window.streamify.video.currentSrc"
        )
        assert page.locator("#alert").is_hidden(), page.inner_text("#alert")

        import grpc

        with pytest.raises(grpc.RpcError) as gone:
            api.eventually(name, lambda v: False, timeout=5)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        page.wait_for_selector("#library li", timeout=15_000)
        assert card(page, name).count() == 0
        assert not [line for line in logs if "pageerror" in line], logs


def test_stale_etag_is_explained(videos, api, mesh_url, mesh_token):
    name = videos["stale"]
    with chromium() as browser:
        page, _ = open_page(browser, mesh_url, mesh_token)
        item = card(page, name)
        item.get_by_role("button", name="Edit “e2e stale”").click()
        item.get_by_label("Title", exact=True).fill("Title from the page")
        api.rename(name, "Title from the API")  # behind the page's back: its etag is stale now
        item.get_by_role("button", name="Save").click()

        text = alert_text(page)
        assert text.startswith("Could not save “e2e stale”: "), text
        assert f"{name} changed since it was read" in text, text  # the server's ABORTED message
        assert "changed elsewhere after this page read it" in text and "press Save again" in text, (
            text
        )
        # The page read it again: the card shows the API's title, the form still holds ours.
        assert item.locator(".card .title").inner_text() == "Title from the API"
        assert item.get_by_label("Title", exact=True).input_value() == "Title from the page"
        screenshot(page, "e2e-stale-etag.png")

        # Saving again (with the etag just read) goes through.
        item.get_by_role("button", name="Save").click()
        page.wait_for_function(
            f"""document.querySelector("#library li[data-name='{name}'] .card .title")
                 .textContent === 'Title from the page'""",
            timeout=15_000,
        )
        assert page.locator("#alert").is_hidden()
        assert (
            api.eventually(name, lambda v: v.title == "Title from the page").title
            == "Title from the page"
        )


def test_retry_failed_video(videos, api, mesh_url, mesh_token):
    name = videos["broken"]
    before = api.job(name)
    with chromium() as browser:
        page, _ = open_page(browser, mesh_url, mesh_token)
        item = card(page, name)
        assert item.locator(".badge").get_attribute("data-status") == "FAILED"
        item.locator(".card").click()
        page.wait_for_function(f"{STATUS} === 'FAILED'", timeout=15_000)
        statuses = record_statuses(page)
        item.get_by_role("button", name="Retry transcoding “e2e broken”").click()

        # The video goes through transcoding again (a refusal would show in the alert box).
        page.wait_for_function(
            f"!document.getElementById('alert').hidden || {STATUS} === 'PROCESSING' || {STATUS} === ''",
            timeout=15_000,
        )
        assert not page.locator("#alert").is_visible(), page.inner_text("#alert")

        # A broken file fails again: what matters is that it was transcoded again.
        page.wait_for_function(f"{STATUS} === 'FAILED'", timeout=READY_TIMEOUT_MS)
        assert "PROCESSING" in statuses and statuses[-1] == "FAILED", statuses
        after = api.job(name)
        assert after.end_time.ToMicroseconds() > before.end_time.ToMicroseconds(), (before, after)
        assert after.create_time == before.create_time  # the same job, run again
        page.wait_for_function(
            f"""document.querySelector("#library li[data-name='{name}'] .badge").dataset.status === 'FAILED'""",
            timeout=10_000,
        )
        assert item.get_by_role("button", name="Retry transcoding “e2e broken”").is_visible()
        screenshot(page, "e2e-retried.png")
