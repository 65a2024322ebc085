"""Small helper for the browser tests: Debian's Chromium driven by Python Playwright.

Playwright cannot download its own browsers here (closed network), so every launch passes the
system binary (`apt-get install -y chromium`) as `executable_path`, with the flags that keep it
quiet and working as root in a container (see the team recipes, section 4).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "services" / "gateway" / "web"
ARTIFACTS = REPO / "test-artifacts"

CHROMIUM_FLAGS = [
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str:
    """The system Chromium, or skip with the command that installs it."""
    path = (
        os.environ.get("STREAMIFY_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if not path:
        pytest.fail(
            "no Chromium on PATH: apt-get install -y chromium (./streamify test installs it)"
        )
    return path


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium (playwright Browser). Playwright is in the dev group: its absence is a
    broken set-up, so it fails here rather than skipping the browser tests."""
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def console_collector(page) -> list[str]:
    """Collects console errors and page errors, to print when a test fails."""
    lines: list[str] = []
    page.on(
        "console",
        lambda m: (
            lines.append(f"console.{m.type}: {m.text}") if m.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda e: lines.append(f"pageerror: {e}"))
    return lines
