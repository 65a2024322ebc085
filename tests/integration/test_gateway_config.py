"""`envoy --mode validate` accepts every shape of the generated gateway config."""

from __future__ import annotations

import pytest

from streamify.gateway.config import Endpoint, GatewayConfig, MediaConfig, write
from streamify.gateway.envoy import validate

pytestmark = pytest.mark.integration

ONE = {"metadata": ["127.0.0.1:50051"]}
THREE = {
    name: [f"127.0.0.1:{base + i}" for i in range(3)]
    for name, base in (("metadata", 50100), ("upload", 50200), ("transcode", 50300))
}
K8S = {
    "metadata": ["metadata.streamify.svc.cluster.local:50051"],
    "upload": ["upload.streamify.svc.cluster.local:50051"],
}
LOCAL_MEDIA = MediaConfig(
    "http://127.0.0.1:8333",
    "streamify-media",
    access_key_id="K",
    secret_access_key="S",
    authz=Endpoint("127.0.0.1", 8181),
)
S3_MEDIA = MediaConfig(
    "https://s3.eu-west-1.amazonaws.com",
    "media",
    region="eu-west-1",
    authz=Endpoint("gateway-authz.streamify.svc.cluster.local", 8181),
)


@pytest.mark.parametrize(
    "replicas,media",
    [
        (ONE, None),
        (THREE, None),
        (ONE, LOCAL_MEDIA),
        (THREE, LOCAL_MEDIA),
        (K8S, S3_MEDIA),
        (THREE, MediaConfig("http://127.0.0.1:8333", "media")),
    ],
    ids=[
        "1-replica",
        "3-replicas",
        "1-replica+media",
        "3-replicas+media",
        "k8s+s3",
        "media-without-authz",
    ],
)
def test_envoy_validates_the_rendered_config(tmp_path, replicas, media):
    path = write(GatewayConfig.local(replicas, media=media), tmp_path / "envoy.yaml")
    assert "OK" in validate(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
