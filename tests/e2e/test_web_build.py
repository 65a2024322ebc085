"""The browser page builds from its lock file: buf generate (local protoc-gen-es) from the
repository's protos, a strict type-check, and the esbuild bundle into dist/. No backend needed.

A proto change that breaks the page (a renamed field or RPC the TypeScript uses) fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.e2e.browser import REPO, WEB

pytestmark = pytest.mark.e2e

PROTOS = sorted((REPO / "proto" / "streamify" / "v1").glob("*.proto"))


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["npm", *args], cwd=WEB, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def built():
    if shutil.which("npm") is None:
        pytest.fail("needs Node.js and npm (./streamify test installs them)")
    if not (WEB / "node_modules" / ".package-lock.json").exists():
        ci = npm("ci", "--no-audit", "--no-fund")
        assert ci.returncode == 0, ci.stdout + ci.stderr
    build = npm("run", "build")
    assert build.returncode == 0, f"npm run build failed:\n{build.stdout}\n{build.stderr}"
    return WEB / "dist"


def test_generated_code_covers_every_proto(built):
    gen = WEB / "src" / "gen"
    for proto in PROTOS:
        out = gen / "streamify" / "v1" / f"{proto.stem}_pb.ts"
        assert out.exists(), f"buf generate made no {out.relative_to(WEB)}"
        assert out.stat().st_mtime >= proto.stat().st_mtime, (
            f"{out.name} is older than {proto.name}"
        )
    # Imported by our protos, so generated too; and the error details we decode.
    assert (gen / "buf" / "validate" / "validate_pb.ts").exists()
    assert (gen / "google" / "rpc" / "error_details_pb.ts").exists()


def test_dist_is_a_complete_page(built):
    html = (built / "index.html").read_text()
    assert re.search(r'<script type="module" src="app.js">', html)
    assert 'href="app.css"' in html
    # What the browser test and people rely on.
    for element in (
        "drop",
        "upload-progress",
        "status",
        "video",
        "qualities",
        "library",
        "more",
        "alert",
    ):
        assert f'id="{element}"' in html, element
    app = (built / "app.js").read_text()
    assert "Your session token expired" in app
    # The library actions (src/library-actions.ts).
    assert "This cannot be undone" in app and "changed elsewhere after this page read it" in app
    assert "1.7.4" in app  # hls.js is bundled, not loaded from elsewhere
    assert "grpc-web" in app.lower()
    css = (built / "app.css").read_text()
    assert ".uppy-DragDrop" in css and ".uppy-StatusBar" in css and "#player" in css


def test_lock_file_pins_what_the_page_uses():
    import json

    manifest = json.loads((WEB / "package.json").read_text())
    lock = json.loads((WEB / "package-lock.json").read_text())
    for section in ("dependencies", "devDependencies"):
        for name, version in manifest[section].items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), (
                f"{name} is not pinned exactly: {version}"
            )
            assert lock["packages"][f"node_modules/{name}"]["version"] == version, name
