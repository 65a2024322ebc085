"""The whole product in a real browser: upload through the page, watch the status change live
over the WatchVideo stream, play the result with hls.js and switch quality.

Needs the whole mesh behind the gateway (see conftest.py for the `mesh_url` / `mesh_token`
contract), Debian's Chromium (`apt-get install -y chromium`) and Python Playwright
(`pip install playwright`; never `playwright install`: it cannot download browsers here).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.browser import ARTIFACTS, chromium, console_collector
from tests.support.clips import make_clip

pytestmark = pytest.mark.e2e

READY_TIMEOUT_MS = int(float(os.environ.get("STREAMIFY_E2E_READY_TIMEOUT", "600")) * 1000)
LIFECYCLE = ["UPLOADING", "UPLOADED", "PROCESSING", "READY"]

STATUS = "document.getElementById('status').dataset.status"


def open_page(browser, mesh_url: str, token: str):
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    logs = console_collector(page)
    page.goto(f"{mesh_url}/#token={token}")
    page.wait_for_selector("body[data-ready=true]", timeout=15_000)
    assert "token=" not in page.url, "the token must leave the address bar"
    return page, logs


def record_statuses(page) -> list[str]:
    """Every value the status element shows, in order (pushed from the page, no polling)."""
    seen: list[str] = []
    page.expose_function(
        "streamifyTestStatus",
        lambda s: seen.append(s) if s and (not seen or seen[-1] != s) else None,
    )
    page.evaluate(
        """() => { const el = document.getElementById('status');
          new MutationObserver(() => window.streamifyTestStatus(el.dataset.status))
            .observe(el, { attributes: true, attributeFilter: ['data-status'] }); }"""
    )
    return seen


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_upload_watch_and_play(mesh_url, mesh_token, tmp_path):
    # 720p source: the ladder never upscales, so this gives several rungs (720p and below).
    clip = make_clip(tmp_path / "e2e-clip.mp4", width=1280, height=720, duration=12.0)
    with chromium() as browser:
        page, logs = open_page(browser, mesh_url, mesh_token)
        statuses = record_statuses(page)
        page.set_input_files("#drop input[type=file]", str(clip))
        try:
            page.wait_for_function(
                f"['READY', 'FAILED'].includes({STATUS})", timeout=READY_TIMEOUT_MS
            )
        finally:
            screenshot(page, "e2e-status.png")
        status_text = page.inner_text("#status")
        assert page.evaluate(STATUS) == "READY", f"{status_text}; console: {logs}"
        # Live over the stream: it moved through the lifecycle in order and reached READY.
        assert statuses[-1] == "READY", statuses
        order = [LIFECYCLE.index(s) for s in statuses if s in LIFECYCLE]
        assert order == sorted(order), f"status went backwards: {statuses}"
        assert "PROCESSING" in statuses or "UPLOADED" in statuses, statuses

        # Plays: currentTime moves past several seconds.
        page.wait_for_function(
            "window.streamify && window.streamify.hls && window.streamify.video.currentTime > 4",
            timeout=60_000,
        )
        levels = page.evaluate(
            "() => window.streamify.hls.levels.map(l => ({h: l.height, b: l.bitrate}))"
        )
        assert len(levels) >= 2, f"hls.js sees {levels}"
        assert page.locator("#qualities button").count() == len(levels) + 1  # + Auto

        # Switching to another level keeps playing.
        current = page.evaluate("() => window.streamify.hls.currentLevel")
        target = max(range(len(levels)), key=lambda i: (i != current, levels[i]["h"]))
        assert target != current
        page.click(f"#qualities button[data-level='{target}']")
        page.wait_for_function(f"window.streamify.hls.currentLevel === {target}", timeout=20_000)
        t = page.evaluate("() => window.streamify.video.currentTime")
        page.wait_for_function(
            f"window.streamify.video.currentTime > {t} + 2 || window.streamify.video.ended",
            timeout=30_000,
        )
        assert (
            page.get_attribute(f"#qualities button[data-level='{target}']", "aria-pressed")
            == "true"
        )
        assert page.evaluate("() => window.streamify.video.error") is None

        # The library lists it, READY, with a poster.
        card = page.locator("#library li").first
        assert card.locator(".badge").get_attribute("data-status") == "READY"
        assert card.locator("img").get_attribute("src")
        shot = screenshot(page, "e2e-player.png")
        assert shot.stat().st_size > 10_000


def test_resume_after_reload(mesh_url, mesh_token, tmp_path):
    """Part 2 never gets through; after a reload, picking the same file sends only part 2."""
    # > 16 MiB (the default part size) so it is two parts; 5 MiB is S3's minimum part size.
    clip = make_clip(tmp_path / "e2e-resume.mp4", width=1280, height=720, duration=20.0)
    assert clip.stat().st_size > 16 * 1024 * 1024
    with chromium() as browser:
        page, logs = open_page(browser, mesh_url, mesh_token)
        puts: list[str] = []
        page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
        blocked = lambda url: "partNumber=2" in url  # noqa: E731
        page.route(blocked, lambda route: route.abort())
        page.set_input_files("#drop input[type=file]", str(clip))
        page.wait_for_function(
            "document.getElementById('alert').textContent.includes('storage failed')",
            timeout=120_000,
        )
        assert any("partNumber=1" in u for u in puts)
        page.unroute(blocked)

        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        page.wait_for_selector("#unfinished li", timeout=15_000)
        assert "1 of 2 parts" in page.inner_text("#unfinished li")
        puts.clear()
        page.set_input_files("#drop input[type=file]", str(clip))
        page.wait_for_function(
            f"['UPLOADED', 'PROCESSING', 'READY'].includes({STATUS})", timeout=120_000
        )
        assert [u for u in puts if "partNumber=" in u] and all("partNumber=2" in u for u in puts), (
            puts
        )
        screenshot(page, "e2e-resumed.png")


def test_errors_a_person_understands(mesh_url, mesh_token):
    with chromium() as browser:
        page, _ = open_page(browser, mesh_url, mesh_token)
        # A 30 GiB file (declared size only: the server refuses before anything is sent).
        page.evaluate(
            """() => { const u = window.streamifyUppy;
              const id = u.addFile({ name: 'huge.mp4', type: 'video/mp4',
                data: new File([new Uint8Array(16)], 'huge.mp4', { type: 'video/mp4' }) });
              u.setFileState(id, { size: 30 * 2 ** 30 }); }"""
        )
        page.wait_for_selector("#alert:not([hidden])", timeout=15_000)
        text = page.inner_text("#alert")
        assert text.startswith("huge.mp4: File size:") and "largest upload accepted" in text, text

        page.evaluate("() => localStorage.setItem('streamify.token', 'not-a-token')")
        page.reload()
        page.wait_for_selector("#alert:not([hidden])", timeout=15_000)
        assert (
            "Your session token expired — get a new one with ./streamify token --user <you>"
            in page.inner_text("#alert")
        )
