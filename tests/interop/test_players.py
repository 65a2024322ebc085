"""The mesh's HLS output in players we did not write, each with its DEFAULT configuration, on a
third-party page (another origin than the gateway): hls.js (`new Hls()`) and Shaka Player
(`new shaka.Player()`), in Debian's Chromium.

For every video the owner's `playback_url` (MetadataService.GetVideo) is handed to the player as
is: no custom loader, no extra headers, no cookies. A private video must play like a public one:
whatever grant the URL carries has to reach every playlist and segment the player fetches by
resolving the playlists' relative URIs.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest

from tests.e2e.browser import ARTIFACTS, console_collector
from tests.interop.conftest import player_versions

pytestmark = pytest.mark.interop

PLAYERS = {"hls.js": "hls.html", "shaka": "shaka.html"}
STATE = "window.interop"
VIDEO = "document.getElementById('v')"


class Session:
    """One player page: its console, the HTTP errors it met and the player's own state."""

    def __init__(self, browser, players_origin: str, player: str, url: str):
        self.player = player
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.console = console_collector(self.page)
        self.http_errors: list[str] = []
        self.page.on(
            "response",
            lambda r: self.http_errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        self.page.on(
            "requestfailed", lambda r: self.http_errors.append(f"failed {r.failure} {r.url}")
        )
        self.page.goto(f"{players_origin}/{PLAYERS[player]}?src={quote(url, safe='')}")
        self.page.wait_for_function(f"{STATE} !== undefined", timeout=10_000)

    def eval(self, expression: str):
        return self.page.evaluate(expression)

    def state(self) -> dict:
        return self.page.evaluate(
            f"""() => ({{ fatal: {STATE}.fatal, errors: {STATE}.errors, events: {STATE}.events,
                 version: {STATE}.version, currentTime: {VIDEO}.currentTime,
                 videoHeight: {VIDEO}.videoHeight, readyState: {VIDEO}.readyState,
                 ended: {VIDEO}.ended, error: {VIDEO}.error && {VIDEO}.error.message }})"""
        )

    def report(self) -> str:
        state = self.state()
        return json.dumps(
            {**state, "http_errors": self.http_errors[:20], "console": self.console[:20]}, indent=1
        )

    def wait(self, condition: str, timeout_ms: int, what: str) -> None:
        """Waits until `condition` or a fatal player error; fails with the player's story."""
        try:
            self.page.wait_for_function(f"{STATE}.fatal || ({condition})", timeout=timeout_ms)
        except Exception as exc:  # noqa: BLE001 - playwright's TimeoutError, reported with the player's state
            raise AssertionError(
                f"{self.player}: {what}: timed out ({exc.__class__.__name__})\n{self.report()}"
            ) from None
        fatal = self.eval(f"{STATE}.fatal")
        assert fatal is None, f"{self.player}: {what}: fatal player error: {fatal}\n{self.report()}"

    def save(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"interop-{name}.json").write_text(self.report())
        self.page.screenshot(path=str(ARTIFACTS / f"interop-{name}.png"))

    def close(self) -> None:
        self.context.close()


def play_and_switch(browser, players_origin: str, player: str, video) -> None:
    """Playback advances past 3 s; >= 2 quality levels (source >= 480p); a forced switch to
    another level is shown (videoHeight) and keeps playing; no fatal error at any point."""
    session = Session(browser, players_origin, player, video.playback_url)
    name = f"{player}-{video.key}"
    try:
        started = time.monotonic()
        session.wait(f"{VIDEO}.currentTime > 3", 60_000, "play past 3 s")
        took = time.monotonic() - started

        levels = session.eval(f"{STATE}.levels()")
        heights = sorted({level["height"] for level in levels})
        assert len(heights) >= 2 and max(heights) >= 480, f"{player} sees {levels}"
        assert set(heights) == set(video.heights), (
            f"{player} sees {heights}, the ladder is {video.heights}"
        )

        shown = session.eval(f"{VIDEO}.videoHeight")
        target = max((lv for lv in levels if lv["height"] != shown), key=lambda lv: lv["height"])
        session.eval(f"{STATE}.switchTo({json.dumps(target['index'])})")
        session.wait(
            f"{VIDEO}.videoHeight === {target['height']}",
            30_000,
            f"switch from {shown}p to level {target['index']} ({target['height']}p)",
        )
        t = session.eval(f"{VIDEO}.currentTime")
        session.wait(
            f"{VIDEO}.currentTime > {t} + 1.5 || {VIDEO}.ended",
            30_000,
            f"keep playing at {target['height']}p",
        )
        assert session.eval(f"{VIDEO}.videoHeight") == target["height"]
        assert session.eval(f"{VIDEO}.error") is None, session.report()
        state = session.state()
        print(
            f"\n[interop] {player} {state['version']} {video.key}: currentTime>3 after {took:.1f}s, "
            f"levels {heights}, switched {shown}p -> {target['height']}p; "
            f"non-fatal errors: {state['errors']}; console: {session.console}"
        )
    finally:
        session.save(name)
        session.close()


def test_players_are_the_pinned_ones(browser, players_origin):
    """The pages load the versions package-lock.json pins (no CDN, no stale copy)."""
    pinned = player_versions()
    for player, package in (("hls.js", "hls.js"), ("shaka", "shaka-player")):
        session = Session(browser, players_origin, player, "about:blank")
        try:
            version = session.eval(f"{STATE}.version")
            assert version.lstrip("v") == pinned[package], (player, version, pinned)
        finally:
            session.close()


@pytest.mark.parametrize("visibility", ["public", "private"])
@pytest.mark.parametrize("player", list(PLAYERS))
def test_plays_and_switches_quality(browser, players_origin, videos, player, visibility):
    play_and_switch(browser, players_origin, player, videos[visibility])


def test_unlisted_plays_in_hls_js(browser, players_origin, videos):
    play_and_switch(browser, players_origin, "hls.js", videos["unlisted"])
