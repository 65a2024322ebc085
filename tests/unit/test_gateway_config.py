"""The gateway's generated Envoy config and signed media grants (no I/O)."""

from __future__ import annotations

import re

import pytest

from streamify.gateway.config import Endpoint, GatewayConfig, MediaConfig, render

pytestmark = pytest.mark.unit


def _routes(doc):
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"], hcm


def _route_for(doc, path):
    routes, _ = _routes(doc)
    for r in routes:
        m = r["match"]
        if "prefix" in m and path.startswith(m["prefix"]):
            return r
        if "safe_regex" in m and re.fullmatch(m["safe_regex"]["regex"], path):
            return r
    raise AssertionError(f"no route for {path}")


def test_replicas_become_endpoints_with_grpc_health_checks():
    doc = render(GatewayConfig.local({"metadata": ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]}))
    (cluster,) = doc["static_resources"]["clusters"]
    assert cluster["type"] == "STATIC"
    ports = [
        e["endpoint"]["address"]["socket_address"]["port_value"]
        for e in cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ]
    assert ports == [1, 2, 3]
    assert cluster["health_checks"][0]["grpc_health_check"] == {
        "service_name": "streamify.v1.MetadataService"
    }
    assert cluster["outlier_detection"]["consecutive_gateway_failure"] == 3
    assert (
        cluster["circuit_breakers"]["thresholds"][0]["retry_budget"]["budget_percent"]["value"]
        == 20
    )


def test_dns_names_give_strict_dns_clusters_for_kubernetes():
    doc = render(
        GatewayConfig.local({"metadata": ["metadata-headless.streamify.svc.cluster.local:50051"]})
    )
    assert doc["static_resources"]["clusters"][0]["type"] == "STRICT_DNS"


def test_reads_are_retried_writes_only_when_unsent_streams_never_time_out():
    doc = render(GatewayConfig.local({"metadata": ["127.0.0.1:1"], "upload": ["127.0.0.1:2"]}))
    get = _route_for(doc, "/streamify.v1.MetadataService/GetVideo")["route"]
    assert (
        "unavailable" in get["retry_policy"]["retry_on"]
        and "per_try_timeout" in get["retry_policy"]
    )
    lst = _route_for(doc, "/streamify.v1.UploadService/ListParts")["route"]
    assert lst["retry_policy"]["retry_on"] == get["retry_policy"]["retry_on"]
    create = _route_for(doc, "/streamify.v1.MetadataService/CreateVideo")["route"]
    assert create["retry_policy"]["retry_on"] == "connect-failure,refused-stream"
    watch = _route_for(doc, "/streamify.v1.MetadataService/WatchVideo")["route"]
    assert watch["timeout"] == "0s" and watch["idle_timeout"] == "0s"
    assert "per_try_timeout" not in watch["retry_policy"]
    assert (
        _route_for(doc, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")["route"][
            "timeout"
        ]
        == "0s"
    )
    assert _route_for(doc, "/grpc.health.v1.Health/Check")["route"]["cluster"] == "metadata"


def test_cors_exposes_grpc_status_and_allows_grpc_web_headers():
    _, hcm = _routes(render(GatewayConfig.local({"metadata": ["127.0.0.1:1"]})))
    cors = hcm["route_config"]["virtual_hosts"][0]["typed_per_filter_config"][
        "envoy.filters.http.cors"
    ]
    assert set(cors["expose_headers"].split(",")) == {
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "x-request-id",
    }
    assert {
        "authorization",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "content-type",
        "x-request-id",
    } <= set(cors["allow_headers"].split(","))
    assert hcm["codec_type"] == "AUTO"


def test_media_authz_runs_before_the_cache_and_signing_after_the_rewrite():
    media = MediaConfig(
        "http://127.0.0.1:8333",
        "bucket",
        access_key_id="K",
        secret_access_key="S",
        authz=Endpoint("127.0.0.1", 9),
    )
    doc = render(GatewayConfig.local({"metadata": ["127.0.0.1:1"]}, media=media))
    routes, hcm = _routes(doc)
    names = [f["name"] for f in hcm["http_filters"]]
    assert names.index("envoy.filters.http.ext_authz") < names.index("envoy.filters.http.cache")
    assert names[-1] == "envoy.filters.http.router"
    route = _route_for(doc, "/media/videos/x/a.ts")
    lua = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.lua")
    code = lua["typed_config"]["source_codes"]["media"]["inline_string"]
    assert 'ORIGIN_PREFIX = "/bucket/"' in code and 'ORIGIN_HOST = "127.0.0.1:8333"' in code
    assert route["typed_per_filter_config"]["envoy.filters.http.lua"]["name"] == "media"
    origin = next(c for c in doc["static_resources"]["clusters"] if c["name"] == "media_origin")
    upstream = origin["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]["http_filters"]
    assert [f["name"] for f in upstream][-2:] == [
        "envoy.filters.http.aws_request_signing",
        "envoy.filters.http.upstream_codec",
    ]
