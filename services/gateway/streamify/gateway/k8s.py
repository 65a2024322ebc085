"""The gateway's Envoy configuration for Kubernetes, rendered by the same ``render`` as the local
mesh (``streamify.gateway.config``), so no hand-kept copy of the Envoy YAML exists.

    python -m streamify.gateway.k8s > k8s/base/gateway-envoy.yaml
    python -m streamify.gateway.k8s --profile eks > k8s/components/aws-s3/gateway-envoy.yaml

prints a ConfigMap (``gateway-envoy``, key ``envoy.yaml``). A contract test fails when a
committed file differs from what this module renders.

In the cluster:

* every API service is one STRICT_DNS cluster on its headless Service
  (``metadata.streamify.svc.cluster.local:50051``): Envoy resolves every ready pod and
  health-checks each one with gRPC;
* the media authz server and the static web page run as sidecars of the gateway pod, so Envoy
  reaches them on 127.0.0.1; the admin interface is bound to 127.0.0.1 too;
* the ``/media`` origin is the in-cluster SeaweedFS (``base``) or regional S3 (``eks``); no
  credentials are written: Envoy's AWS credential chain reads ``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY`` from its environment (a Secret) or the IRSA web identity on EKS;
* the token that guards the internal origin route (``MediaConfig.internal_token``) is a secret,
  so the committed ConfigMap holds a placeholder. The gateway pod's init container runs
  ``python -m streamify.gateway.k8s materialize TEMPLATE OUT``, which writes the config with the
  value of ``$GATEWAY_MEDIA_INTERNAL_TOKEN`` (from a Secret) to an emptyDir Envoy reads.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from streamify.gateway.config import API_SERVICES, Endpoint, GatewayConfig, MediaConfig, render

__all__ = [
    "PORTS",
    "PROFILES",
    "TOKEN_ENV",
    "TOKEN_PLACEHOLDER",
    "Profile",
    "configmap",
    "gateway_config",
    "materialize",
    "to_yaml",
]

# Ports every pod of a kind uses (each pod has its own IP, so they may repeat across kinds).
PORTS: dict[str, int] = {
    "metadata": 50051,
    "upload": 50052,
    "transcode": 50053,
    "gateway": 8080,
    "gateway_admin": 9901,
    "authz": 8082,
    "web": 8083,
    "metrics": 9464,
}
CONFIGMAP_NAME = "gateway-envoy"
CONFIG_KEY = "envoy.yaml"
TOKEN_ENV = "GATEWAY_MEDIA_INTERNAL_TOKEN"
TOKEN_PLACEHOLDER = "STREAMIFY_MEDIA_INTERNAL_TOKEN_PLACEHOLDER"  # passes MediaConfig's check


@dataclass(frozen=True)
class Profile:
    """Where the cluster's pieces are; one per kustomize variant of the gateway config."""

    name: str
    origin_url: str  # the /media origin (S3 API)
    region: str = "us-east-1"
    media_bucket: str = "streamify-media"
    namespace: str = "streamify"
    cluster_domain: str = "cluster.local"
    reflection: bool = True  # grpcurl through the gateway (off in production)

    def service_host(self, service: str) -> str:
        return f"{service}.{self.namespace}.svc.{self.cluster_domain}"


PROFILES: dict[str, Profile] = {
    # in-cluster SeaweedFS (the stand-in the base runs, used by the kind overlay)
    "base": Profile("base", origin_url="http://seaweedfs.streamify.svc.cluster.local:8333"),
    # regional AWS S3, path-style requests SigV4-signed with the pod's IRSA role
    "eks": Profile("eks", origin_url="https://s3.us-east-1.amazonaws.com", reflection=False),
}


def gateway_config(profile: Profile) -> GatewayConfig:
    local = "127.0.0.1"
    return GatewayConfig.local(
        {name: [Endpoint(profile.service_host(name), PORTS[name])] for name, _ in API_SERVICES},
        listen_host="0.0.0.0",
        listen_port=PORTS["gateway"],
        admin_host=local,
        admin_port=PORTS["gateway_admin"],
        media=MediaConfig(
            origin_url=profile.origin_url,
            bucket=profile.media_bucket,
            region=profile.region,
            authz=Endpoint(local, PORTS["authz"]),
            internal_token=TOKEN_PLACEHOLDER,
        ),
        web=Endpoint(local, PORTS["web"]),
        reflection=profile.reflection,
    )


def configmap(profile: Profile) -> dict[str, Any]:
    envoy = yaml.safe_dump(
        render(gateway_config(profile)), sort_keys=False, default_flow_style=False
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIGMAP_NAME,
            "labels": {
                "app.kubernetes.io/name": "gateway",
                "app.kubernetes.io/component": "envoy-config",
            },
            "annotations": {
                "streamify.dev/generated-by": f"python -m streamify.gateway.k8s --profile {profile.name}",
            },
        },
        "data": {CONFIG_KEY: envoy},
    }


class _BlockDumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no type stubs
    """Multi-line strings (the embedded envoy.yaml) as readable `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def to_yaml(profile: Profile) -> str:
    header = (
        "# GENERATED by `python -m streamify.gateway.k8s"
        + ("" if profile.name == "base" else f" --profile {profile.name}")
        + "`: do not edit (tests/contract/test_k8s.py checks it is fresh).\n"
    )
    body: str = yaml.dump(  # no stream: a str
        configmap(profile),
        Dumper=_BlockDumper,
        sort_keys=False,
        default_flow_style=False,
        width=1000,
    )
    return header + body


def materialize(template: str, token: str) -> str:
    """The template with the placeholder replaced by `token` (raises ValueError when unusable)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{32,}", token or ""):
        raise ValueError(f"${TOKEN_ENV} must be at least 32 of [A-Za-z0-9_-]")
    if TOKEN_PLACEHOLDER not in template:
        raise ValueError(f"the template has no {TOKEN_PLACEHOLDER}")
    return template.replace(TOKEN_PLACEHOLDER, token)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m streamify.gateway.k8s", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command")
    p.add_argument("--profile", choices=sorted(PROFILES), default="base")
    p.add_argument("--region", help="AWS region of the media bucket (default: the profile's)")
    p.add_argument("--media-bucket", help="media bucket name (default: the profile's)")
    m = sub.add_parser(
        "materialize", help=f"write TEMPLATE with ${TOKEN_ENV} filled in to OUT (mode 0600)"
    )
    m.add_argument("template")
    m.add_argument("out")
    args = p.parse_args(argv)
    if args.command == "materialize":
        try:
            text = materialize(Path(args.template).read_text(), os.environ.get(TOKEN_ENV, ""))
        except (OSError, ValueError) as exc:
            print(f"materialize: {exc}", file=sys.stderr)
            return 1
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return 0
    profile = PROFILES[args.profile]
    if args.region or args.media_bucket:
        region = args.region or profile.region
        profile = replace(
            profile,
            region=region,
            media_bucket=args.media_bucket or profile.media_bucket,
            origin_url=f"https://s3.{region}.amazonaws.com"
            if profile.name == "eks"
            else profile.origin_url,
        )
    sys.stdout.write(to_yaml(profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
