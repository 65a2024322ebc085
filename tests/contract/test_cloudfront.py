"""The CloudFront grant check on EKS: the committed resources are what the code renders, the
distribution runs the function on every viewer request, and the function's JavaScript (run in
Node, with CloudFront's `cloudfront` module stood in) accepts exactly the grants the Python code
mints and the gateway accepts: differential on a generated set of URLs."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from streamify.core import media_grants as grants
from streamify.core.config import Settings
from streamify.gateway import cloudfront
from streamify.gateway.authz import MediaAuthorizer

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = ROOT / "k8s" / "components" / "aws-cloudfront"
SECRET = "a-deployment-grant-secret-0123456789abcdef"

HARNESS = """
import { handler } from './function.mjs';
const cases = JSON.parse(process.argv[2]);
const out = [];
for (const c of cases) {
  const reply = await handler({ request: { method: c.method, uri: c.uri, querystring: { x: { value: '1' } }, headers: {} } });
  out.push(reply.statusCode ? { status: reply.statusCode } : { status: 0, uri: reply.uri, query: reply.querystring });
}
console.log(JSON.stringify(out));
"""


def test_committed_grant_check_is_what_the_code_renders():
    assert (COMPONENT / "grant-check.yaml").read_text() == cloudfront.to_yaml(), (
        "k8s/components/aws-cloudfront/grant-check.yaml is stale: "
        "python -m streamify.gateway.cloudfront > k8s/components/aws-cloudfront/grant-check.yaml"
    )


def test_the_distribution_checks_every_viewer_request_and_caches_no_longer_than_a_grant():
    function, policy = cloudfront.resources()
    distribution = yaml.safe_load((COMPONENT / "distribution.yaml").read_text().split("---")[1])
    behavior = distribution["spec"]["distributionConfig"]["defaultCacheBehavior"]
    associations = behavior["functionAssociations"]["items"]
    assert [(a["eventType"], a["functionARN"].rsplit("/", 1)[1]) for a in associations] == [
        ("viewer-request", function["spec"]["name"])
    ]
    config = policy["spec"]["cachePolicyConfig"]
    assert config["maxTTL"] <= Settings.model_fields["media_grant_ttl_seconds"].default
    keyed = config["parametersInCacheKeyAndForwardedToOrigin"]
    assert keyed["queryStringsConfig"] == {"queryStringBehavior": "none"}
    assert keyed["cookiesConfig"] == {"cookieBehavior": "none"}
    kustomization = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    literals = kustomization["configMapGenerator"][0]["literals"]
    assert "STREAMIFY_MEDIA_GRANT_ALL_VIDEOS=true" in literals  # every URL carries a grant


def _cases(now: float) -> list[tuple[str, str]]:
    """(method, uri) pairs: valid grants, and every way of editing one."""
    key = SECRET.encode()
    good = grants.grant_segment(key, "abc", 600, now=now)
    expires, signature = good.split(".")[1:]
    other = grants.grant_segment(key, "other", 600, now=now)
    expired = grants.grant_segment(key, "abc", -5, now=now)
    foreign = grants.grant_segment(b"another key", "abc", 600, now=now)
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    uris = [
        f"/videos/abc/{good}/master.m3u8",
        f"/videos/abc/{good}/720p/seg_00001.m4s",
        f"/videos/abc/{good}/poster.jpg",
        "/videos/abc/master.m3u8",  # no grant
        f"/videos/abd/{good}/master.m3u8",  # moved to another video
        f"/videos/abc/{other}/master.m3u8",  # another video's grant
        f"/videos/abc/{expired}/master.m3u8",
        f"/videos/abc/{foreign}/master.m3u8",
        f"/videos/abc/{flipped}/master.m3u8",
        f"/videos/abc/grant.{int(expires) + 3600}.{signature}/master.m3u8",  # later expiry
        f"/videos/abc/{good}/../../abd/master.m3u8",
        f"/videos/abc/{good}/",
        f"/videos/abc/{good}//x",
        f"/videos/ABC/{good}/master.m3u8",
        f"/sources/abc/{good}/raw.mp4",  # not media
        "/videos/abc/grant.%C3%A9.x/master.m3u8",
    ]
    return [("GET", u) for u in uris] + [("HEAD", uris[0]), ("OPTIONS", "/videos/abc/master.m3u8")]


def _run_function(tmp_path: Path, cases: list[tuple[str, str]]) -> list[dict]:
    stub = tmp_path / "node_modules" / "cloudfront"
    stub.mkdir(parents=True)
    (stub / "package.json").write_text(
        json.dumps({"name": "cloudfront", "type": "module", "main": "index.js"})
    )
    wanted, value = json.dumps(cloudfront.KVS_KEY), json.dumps(SECRET)
    (stub / "index.js").write_text(
        "export default { kvs: () => ({ get: async (k) => { if (k !== "
        + wanted
        + ") throw new Error('no key ' + k); return "
        + value
        + "; } }) };\n"
    )
    source = cloudfront.FUNCTION_SOURCE.read_text()
    (tmp_path / "function.mjs").write_text(source + "\nexport { handler };\n")
    (tmp_path / "run.mjs").write_text(HARNESS)
    payload = json.dumps([{"method": m, "uri": u} for m, u in cases])
    done = subprocess.run(
        ["node", "run.mjs", payload], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_edge_accepts_exactly_what_the_gateway_accepts(tmp_path):
    now = time.time()
    cases = _cases(now)
    edge = _run_function(tmp_path, cases)
    assert (
        sum(reply["status"] == 0 for reply in edge) == 5
    )  # 3 GETs and a HEAD with the grant, the preflight
    gateway = MediaAuthorizer(SECRET.encode(), lookup=None)  # type: ignore[arg-type]
    for (method, uri), reply in zip(cases, edge, strict=True):
        if method == "OPTIONS":
            assert reply["status"] == 0  # preflights pass (no bytes)
            continue
        verdict = gateway.quick(method, "/authz/media" + uri)
        gateway_allows = verdict == 200
        assert (reply["status"] == 0) == gateway_allows, (uri, reply, verdict)
        if gateway_allows:
            media = grants.parse_media_key(uri.lstrip("/"))
            assert reply["uri"] == "/" + media.object_key  # the grant leaves the cache key
            assert reply["query"] == {}
        else:
            assert reply["status"] == 403, (uri, reply)
