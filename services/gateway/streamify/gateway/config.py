"""The one source of the Envoy gateway's configuration.

``render(GatewayConfig) -> dict`` builds the whole bootstrap; ``to_yaml`` / ``write`` dump it.
The same function renders the local mesh (STATIC endpoints on 127.0.0.1) and Kubernetes
(one STRICT_DNS hostname per service: a headless Service resolves to every ready pod), so no
hand-kept copy of the YAML exists anywhere.

What the rendered gateway does (see docs/architecture.md, "Gateway"):

* one listener, codec AUTO: native gRPC (h2c) and grpc-web (HTTP/1.1) with CORS on one port;
* a cluster per API service with several endpoints, active gRPC health checks (with the
  service name), outlier detection, circuit breakers and a retry budget;
* per route class, by method name (``safe_regex``):
    - streams (``Watch*``): no route timeout, no idle timeout, retried only before they start;
    - reads (``Get*``, ``List*``), health: retried on ``unavailable, cancelled, reset,
      connect-failure, refused-stream``, with a per-try timeout;
    - everything else (writes): retried only when the request cannot have reached a server
      (``connect-failure, refused-stream``). The gateway cannot see a ``request_id`` inside a
      protobuf body, so writes that carry one are retried by the client (whose channel has
      gRPC retries on), never by the gateway;
* ``/grpc.health.v1.Health/`` and ``/grpc.reflection.`` go to the first service's cluster (every
  service answers health for "" and reflection for all ``streamify.v1`` services);
* ``/media/`` (optional): ext_authz (signed grants, visibility) -> request clean-up (query,
  cookies; Range is taken off and answered on the way back, from the whole object) -> HTTP cache
  of whole objects -> the S3 origin, whose requests are SigV4-signed by an upstream
  ``aws_request_signing`` filter after the path and host rewrites (see MEDIA_LUA).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from streamify.core import storage_keys

__all__ = [
    "API_SERVICES",
    "Endpoint",
    "GatewayConfig",
    "MediaConfig",
    "ServiceUpstream",
    "render",
    "to_yaml",
    "write",
]

# The public API behind the gateway: (cluster name, full service name).
API_SERVICES: tuple[tuple[str, str], ...] = (
    ("metadata", "streamify.v1.MetadataService"),
    ("upload", "streamify.v1.UploadService"),
    ("transcode", "streamify.v1.TranscodeService"),
)

READ_RETRY_ON = "unavailable,cancelled,reset,connect-failure,refused-stream"
WRITE_RETRY_ON = "connect-failure,refused-stream"  # the request never reached a server
STREAM_METHODS = r"Watch[A-Za-z0-9]*"
READ_METHODS = r"(?:Get|List)[A-Za-z0-9]*"

_T = "type.googleapis.com/"
MEDIA_PREFIX = "/media/"
INTERNAL_HEADER = "x-streamify-media-origin"
_RANDOM_TOKEN = secrets.token_urlsafe(24)  # per process, unless MediaConfig.internal_token


@dataclass(frozen=True)
class Endpoint:
    host: str  # an IP (STATIC) or a DNS name (STRICT_DNS: every address it resolves to)
    port: int

    @classmethod
    def parse(cls, value: str | tuple[str, int] | Endpoint) -> Endpoint:
        if isinstance(value, Endpoint):
            return value
        if isinstance(value, tuple):
            return cls(value[0], int(value[1]))
        host, _, port = value.rpartition(":")
        return cls(host.strip("[]"), int(port))

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class ServiceUpstream:
    """One API service and its replicas."""

    cluster: str  # e.g. "metadata"
    service: str  # e.g. "streamify.v1.MetadataService" (route prefix and health-check name)
    endpoints: tuple[Endpoint, ...]

    @classmethod
    def of(
        cls, cluster: str, service: str, endpoints: Sequence[str | tuple[str, int] | Endpoint]
    ) -> ServiceUpstream:
        return cls(cluster, service, tuple(Endpoint.parse(e) for e in endpoints))


@dataclass(frozen=True)
class MediaConfig:
    """The /media route: the CDN role in front of the S3 media bucket."""

    origin_url: str  # S3 endpoint, e.g. http://127.0.0.1:8333 or https://s3.us-east-1.amazonaws.com
    bucket: str  # path-style: /media/{key} -> /{bucket}/{key}
    region: str = "us-east-1"
    # Inline SigV4 credentials (local mode; the file is then written 0600). None: Envoy's AWS
    # credential chain (AWS_ACCESS_KEY_ID/... in its environment, IRSA web identity on EKS).
    access_key_id: str | None = None
    secret_access_key: str | None = None
    authz: Endpoint | None = None  # the streamify.gateway.authz server; None = no access control
    # meant as "larger objects pass through uncached", but Envoy 1.40 does not enforce it (a
    # 20 MB object is cached: docs/envoy-range-repro/README.md); the cache is unbounded
    cache_max_body_bytes: int = 16 * 1024 * 1024
    cors_max_age_seconds: int = 86400
    # guards the internal origin route (see MEDIA_LUA); None = random per process. Give a fixed
    # secret where several renders must agree (e.g. rendered once per Kubernetes rollout).
    internal_token: str | None = None


@dataclass(frozen=True)
class GatewayConfig:
    services: tuple[ServiceUpstream, ...]
    listen_port: int = 8080
    listen_host: str = "127.0.0.1"
    admin_port: int = 9901
    admin_host: str = "127.0.0.1"
    media: MediaConfig | None = None
    web: Endpoint | None = None  # static server of the browser page, routed at `/` (last)
    # gRPC server reflection through the gateway (grpcurl's `list`/`describe`). Off in
    # production: without the route a reflection call is UNIMPLEMENTED, and the API's shape is
    # not offered to anyone who can reach the gateway.
    reflection: bool = True
    # timeouts and resilience knobs (seconds unless named otherwise)
    connect_timeout: float = 1.0
    unary_timeout: float = 60.0  # route timeout of unary calls (a grpc-timeout header wins)
    per_try_timeout: float = 5.0  # reads only
    num_retries: int = 3
    stream_idle_timeout: float = 300.0  # HCM default for everything but the Watch* streams
    health_check_interval: float = 1.0
    health_check_timeout: float = 1.0
    unhealthy_threshold: int = 2
    healthy_threshold: int = 1
    outlier_base_ejection_time: float = 10.0
    outlier_max_ejection_percent: int = 50
    retry_budget_percent: float = 20.0
    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 4096
    max_downstream_connections: int = 50000
    cors_origins_regex: str = ".*"  # allowed origins for the API (browsers' grpc-web)

    @classmethod
    def local(
        cls,
        replicas: dict[str, Sequence[str | tuple[str, int] | Endpoint]],
        **options: Any,
    ) -> GatewayConfig:
        """`replicas` maps a cluster name of API_SERVICES ("metadata", ...) to its endpoints."""
        names = dict(API_SERVICES)
        services = tuple(
            ServiceUpstream.of(cluster, names[cluster], endpoints)
            for cluster, endpoints in replicas.items()
        )
        return cls(services=services, **options)


# --------------------------------------------------------------------------- helpers


def _d(seconds: float) -> str:
    return f"{seconds:g}s"


def _addr(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _typed(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": _T + type_name, **fields}


def _lb_endpoints(endpoints: Sequence[Endpoint]) -> list[dict[str, Any]]:
    return [{"endpoint": {"address": _addr(e.host, e.port)}} for e in endpoints]


def _cluster_type(endpoints: Sequence[Endpoint]) -> str:
    return "STATIC" if all(e.is_ip for e in endpoints) else "STRICT_DNS"


def _retry_policy(cfg: GatewayConfig, retry_on: str, per_try: bool) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "retry_on": retry_on,
        "num_retries": cfg.num_retries,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": _typed(
                    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                ),
            }
        ],
        "host_selection_retry_max_attempts": 5,
        "retry_back_off": {"base_interval": "0.025s", "max_interval": "0.25s"},
    }
    if per_try:
        policy["per_try_timeout"] = _d(cfg.per_try_timeout)
    return policy


def _grpc_route(
    cfg: GatewayConfig, match: dict[str, Any], cluster: str, kind: str
) -> dict[str, Any]:
    """kind: "stream" (server streams), "read" (idempotent unary), "write", "reflection"."""
    route: dict[str, Any] = {
        "cluster": cluster,
        # a client's grpc-timeout header bounds the call (no cap); without one the route timeout
        "max_stream_duration": {"grpc_timeout_header_max": "0s"},
    }
    if kind in ("stream", "reflection"):
        route["timeout"] = "0s"  # no route timeout: streams live as long as the client wants
        route["idle_timeout"] = "0s"  # and no stream idle timeout either (overrides the HCM's)
        route["retry_policy"] = _retry_policy(
            cfg, READ_RETRY_ON if kind == "stream" else WRITE_RETRY_ON, per_try=False
        )
    elif kind == "read":
        route["timeout"] = _d(cfg.unary_timeout)
        route["retry_policy"] = _retry_policy(cfg, READ_RETRY_ON, per_try=True)
    else:
        route["timeout"] = _d(cfg.unary_timeout)
        route["retry_policy"] = _retry_policy(cfg, WRITE_RETRY_ON, per_try=False)
    return {"match": match, "route": route}


def _service_routes(cfg: GatewayConfig, up: ServiceUpstream) -> list[dict[str, Any]]:
    svc = re.escape(up.service)
    return [
        _grpc_route(
            cfg, {"safe_regex": {"regex": f"/{svc}/{STREAM_METHODS}"}}, up.cluster, "stream"
        ),
        _grpc_route(cfg, {"safe_regex": {"regex": f"/{svc}/{READ_METHODS}"}}, up.cluster, "read"),
        _grpc_route(cfg, {"prefix": f"/{up.service}/"}, up.cluster, "write"),
    ]


def _grpc_cluster(cfg: GatewayConfig, up: ServiceUpstream) -> dict[str, Any]:
    return {
        "name": up.cluster,
        "type": _cluster_type(up.endpoints),
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": _d(cfg.connect_timeout),
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={
                    "http2_protocol_options": {
                        "connection_keepalive": {"interval": "30s", "timeout": "5s"},
                    }
                },
            )
        },
        "load_assignment": {
            "cluster_name": up.cluster,
            "endpoints": [{"lb_endpoints": _lb_endpoints(up.endpoints)}],
        },
        "health_checks": [
            {
                "timeout": _d(cfg.health_check_timeout),
                "interval": _d(cfg.health_check_interval),
                "no_traffic_interval": _d(max(cfg.health_check_interval, 5.0)),
                "unhealthy_threshold": cfg.unhealthy_threshold,
                "healthy_threshold": cfg.healthy_threshold,
                "grpc_health_check": {"service_name": up.service},
            }
        ],
        "outlier_detection": {
            # gRPC statuses count as their HTTP equivalents (UNAVAILABLE = 503, INTERNAL = 500)
            "consecutive_5xx": 5,
            "consecutive_gateway_failure": 3,
            "enforcing_consecutive_gateway_failure": 100,
            # connect failures, resets and timeouts are counted apart from the server's answers
            "split_external_local_origin_errors": True,
            "consecutive_local_origin_failure": 2,
            "enforcing_consecutive_local_origin_failure": 100,
            "interval": "1s",
            "base_ejection_time": _d(cfg.outlier_base_ejection_time),
            "max_ejection_percent": cfg.outlier_max_ejection_percent,
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": cfg.max_connections,
                    "max_pending_requests": cfg.max_pending_requests,
                    "max_requests": cfg.max_requests,
                    # retries in flight may be at most this share of active requests (min 10)
                    "retry_budget": {
                        "budget_percent": {"value": cfg.retry_budget_percent},
                        "min_retry_concurrency": 10,
                    },
                }
            ]
        },
    }


# --------------------------------------------------------------------------- /media

# The /media Lua filter: listed after ext_authz and before the cache, so its request side runs
# before the cache and its response side after it.
#
# Request: the grant (a path segment, see streamify.core.media_grants) has been checked by
# ext_authz; drop it and any query, so every viewer shares one cache entry and the origin sees a
# clean request. Range and If-Range are taken off the request here, so the cache only ever sees
# plain GETs: it fetches, stores and serves WHOLE objects, and cold and warm requests take the
# same path. A GET's Range is remembered in dynamic metadata.
#
# Response: Range is answered here, from the whole object the cache (hit) or the origin (miss)
# sends, by RFC 9110 section 14: one satisfiable range -> 206 with Content-Range, cut out of the
# body as it streams past (bodyChunks, never handle:body()); no satisfiable range -> 416 with
# `Content-Range: bytes */size`; several ranges -> the full 200 (no multipart; a server may
# ignore Range); another unit, bad syntax, HEAD, an If-Range that does not match -> the full 200.
#
# Why like this (docs/envoy-range-repro/README.md has the reproductions, on Envoy 1.40.0):
# * buffering the body with handle:body() answers 500 for every object above the stream's buffer
#   limit (1 MiB by default): `ffmpeg -i` sends `Range: bytes=0-` for each segment;
# * the old cache filter (envoy.extensions.filters.http.cache.v3.CacheConfig) crashes Envoy
#   (SIGSEGV, always at the same place) when downstream streams end early while it fetches
#   misses: after body()'s buffer-overflow 500, after a client closes on its trimmed 206 or 416,
#   and, with nothing but that cache and the router, after players hang up (which they do on
#   every seek or quality switch). The cache_v2 filter (CacheV2Config, used below) serves misses
#   from a cache session and survives all of these;
# * the old cache stores a cold Range request's 206 and serves it to full GETs later (recipes
#   section 11); cache_v2 fetches the whole object for a cold Range, and here it never sees one;
#   the origin cluster strips Range as well (ORIGIN_REQUEST_HEADERS_REMOVED), in depth;
# * cache_v2 answers Range itself, but its 416 has no Content-Range, it answers 200 to a range
#   that covers the whole object and 206 to HEAD: hence Range never reaches it.
# Warm ranges thus stream the whole cached object through this filter (about 2 ms per 16 MiB).
MEDIA_LUA = r"""
local MAX_RANGE_SPECS = 64  -- more ranges than this in one header: ignored (the full 200)

local function trim(s)
  return (string.gsub(s, "^[ \t]*(.-)[ \t]*$", "%1"))
end

-- A Range value -> its list of byte range-specs ({first = n, last = n|nil} or {suffix = n}), or
-- nil when the header must be ignored (another unit, invalid syntax, too many ranges).
local function parse_range(value)
  local unit, set = string.match(value, "^[ \t]*([^ \t=]+)[ \t]*=(.*)$")
  if unit == nil or string.lower(unit) ~= "bytes" then return nil end
  local specs = {}
  for element in string.gmatch(set .. ",", "([^,]*),") do
    element = trim(element)
    if element ~= "" then  -- empty list elements are allowed and ignored (RFC 9110 5.6.1)
      local first, last = string.match(element, "^(%d*)%-(%d*)$")
      if first == nil or (first == "" and last == "") then return nil end
      if #specs == MAX_RANGE_SPECS then return nil end
      if first == "" then
        specs[#specs + 1] = {suffix = tonumber(last)}
      else
        local spec = {first = tonumber(first)}
        if last ~= "" then
          spec.last = tonumber(last)
          if spec.last < spec.first then return nil end  -- invalid: the whole header is
        end
        specs[#specs + 1] = spec
      end
    end
  end
  if #specs == 0 then return nil end
  return specs
end

-- How a `size`-byte object answers `specs`: "full" (200), "none" (416) or "range", a, b (206
-- with bytes a..b).
local function answer(specs, size)
  local satisfiable, a, b = 0, nil, nil
  for _, spec in ipairs(specs) do
    if spec.suffix ~= nil then
      if spec.suffix > 0 then
        -- satisfiable even when the object is empty, but then there is no byte to send
        if size == 0 then return "full" end
        satisfiable = satisfiable + 1
        a, b = math.max(size - spec.suffix, 0), size - 1
      end
    elseif spec.first < size then
      satisfiable = satisfiable + 1
      a, b = spec.first, math.min(spec.last or (size - 1), size - 1)
    end
  end
  if satisfiable == 0 then return "none" end
  if #specs > 1 then return "full" end  -- several ranges: the full 200 instead of multipart
  return "range", a, b
end

-- If-Range (RFC 9110 13.1.5): a strong entity tag equal to the ETag, or a date equal to
-- Last-Modified; anything else sends the full 200.
local function if_range_matches(value, headers)
  value = trim(value)
  if string.sub(value, 1, 2) == "W/" then return false end
  local validator = headers:get(string.sub(value, 1, 1) == '"' and "etag" or "last-modified")
  return validator ~= nil and trim(validator) == value
end

local function remember_range(handle, headers)
  local range = headers:get("range")
  local if_range = headers:get("if-range")
  headers:remove("range")
  headers:remove("if-range")
  -- Range is defined for GET only; any other method ignores it (RFC 9110 14.2)
  if range == nil or headers:get(":method") ~= "GET" or parse_range(range) == nil then return end
  local meta = handle:streamInfo():dynamicMetadata()
  meta:set("streamify.media", "range", range)
  if if_range ~= nil then meta:set("streamify.media", "if_range", if_range) end
end

local function answer_range(handle)
  local meta = handle:streamInfo():dynamicMetadata():get("streamify.media")
  if meta == nil or meta["range"] == nil then return end
  local headers = handle:headers()
  if headers:get(":status") ~= "200" then return end  -- errors, 304s: as they are
  local size = tonumber(string.match(headers:get("content-length") or "", "^[ \t]*(%d+)[ \t]*$"))
  if size == nil then return end  -- length unknown: the full 200 is a valid answer
  if meta["if_range"] ~= nil and not if_range_matches(meta["if_range"], headers) then return end
  local kind, a, b = answer(parse_range(meta["range"]), size)
  if kind == "full" then return end
  if kind == "none" then
    headers:replace(":status", "416")
    headers:replace("content-range", string.format("bytes */%d", size))
    headers:replace("content-length", "0")
    headers:replace("cache-control", "no-store")  -- not the object's year-long max-age
    a, b = size, size - 1  -- keep no byte
  else
    headers:replace(":status", "206")
    headers:replace("content-range", string.format("bytes %d-%d/%d", a, b, size))
    headers:replace("content-length", string.format("%d", b - a + 1))
    if a == 0 and b == size - 1 then return end  -- the whole object: the body as it is
  end
  -- Keep bytes a..b of the body as it streams past, chunk by chunk.
  local pos = 0
  for chunk in handle:bodyChunks() do
    local n = chunk:length()
    local first, last = pos, pos + n - 1
    if last < a or first > b then
      if n > 0 then chunk:setBytes("") end
    elseif first < a or last > b then
      local from = math.max(a, first)
      chunk:setBytes(chunk:getBytes(from - first, math.min(b, last) - from + 1))
    end
    pos = pos + n
  end
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local path = headers:get(":path")
  local q = string.find(path, "?", 1, true)
  if q ~= nil then
    path = string.sub(path, 1, q - 1)
  end
  -- a private video's grant (/media/videos/{id}/grant.E.S/...) was checked by ext_authz; the
  -- object is the same for every viewer, so the grant leaves the path before the cache keys it
  path = string.gsub(path, "^(/media/videos/[a-z0-9-]+/)grant%.[^/]*/", "%1", 1)
  -- /media/{key} -> /{bucket}/{key} on the origin's Host, here and not with the route's
  -- prefix_rewrite/host_rewrite: since 1.33 the cache filter fetches a miss with its own async
  -- client, which looks the route up again from these headers and ignores rewrites
  -- (envoyproxy/envoy#39135). The token makes that lookup find the internal origin route, which
  -- no client can reach by itself.
  headers:replace(":path", ORIGIN_PREFIX .. string.sub(path, MEDIA_PREFIX_LEN + 1))
  headers:replace(":authority", ORIGIN_HOST)
  headers:replace(INTERNAL_HEADER, INTERNAL_TOKEN)
  headers:remove("cookie")
  headers:remove("authorization")
  remember_range(handle, headers)
end

function envoy_on_response(handle)
  answer_range(handle)
end
"""

# Upstream filter of the origin cluster (see MEDIA_LUA): the origin is only asked on a miss, and
# then always for the whole object, without the viewer's Origin. Range and If-Range never get
# here (the Lua filter takes them off), and are removed again in case a later change lets them:
# Envoy 1.40's old cache filter stores a cold Range request's 206 and serves it to full GETs.
# From the origin's answer go its own CORS headers (Envoy answers CORS) and `Vary: Origin`
# (SeaweedFS sends it always, and the cache refuses to store a response that varies on a header
# outside its allow-list).
ORIGIN_REQUEST_HEADERS_REMOVED = ("range", "origin", "if-range", INTERNAL_HEADER)
ORIGIN_RESPONSE_HEADERS_REMOVED = (
    "vary",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-allow-methods",
    "access-control-allow-headers",
)


def _origin(media: MediaConfig) -> tuple[str, str, int, bool]:
    url = urlsplit(media.origin_url)
    tls = url.scheme == "https"
    host = url.hostname or "127.0.0.1"
    port = url.port or (443 if tls else 80)
    default_port = (tls and port == 443) or (not tls and port == 80)
    host_header = host if default_port else f"{host}:{port}"
    return host, host_header, port, tls


def _internal_token(media: MediaConfig) -> str:
    if media.internal_token:
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,}", media.internal_token):
            raise ValueError("media internal_token: at least 16 of [A-Za-z0-9_-]")
        return media.internal_token
    return _RANDOM_TOKEN


def _media_lua(media: MediaConfig) -> str:
    _, host_header, _, _ = _origin(media)
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,62}", media.bucket):
        raise ValueError(f"not an S3 bucket name: {media.bucket!r}")
    constants = (
        f"local MEDIA_PREFIX_LEN = {len(MEDIA_PREFIX)}\n"
        f'local ORIGIN_PREFIX = "/{media.bucket}/"\n'
        f'local ORIGIN_HOST = "{host_header}"\n'
        f'local INTERNAL_HEADER = "{INTERNAL_HEADER}"\n'
        f'local INTERNAL_TOKEN = "{_internal_token(media)}"\n'
    )
    return constants + MEDIA_LUA


def _media_route(media: MediaConfig) -> dict[str, Any]:
    per_filter: dict[str, Any] = {
        "envoy.filters.http.cors": _typed(
            "envoy.extensions.filters.http.cors.v3.CorsPolicy",
            allow_origin_string_match=[{"safe_regex": {"regex": ".*"}}],
            allow_methods="GET, HEAD, OPTIONS",
            allow_headers="range",
            expose_headers="content-length,content-range,accept-ranges,age",
            max_age=str(media.cors_max_age_seconds),
        ),
        "envoy.filters.http.lua": _typed(
            "envoy.extensions.filters.http.lua.v3.LuaPerRoute", name="media"
        ),
    }
    if media.authz is not None:
        per_filter["envoy.filters.http.ext_authz"] = _typed(
            "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
            check_settings={},
        )
    return {
        "match": {
            "prefix": MEDIA_PREFIX,
            "headers": [
                {"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD|OPTIONS"}}}
            ],
        },
        "route": {
            "cluster": "media_origin",
            "timeout": "30s",
            "retry_policy": {
                "retry_on": "connect-failure,refused-stream,reset,5xx",
                "num_retries": 2,
            },
        },
        "typed_per_filter_config": per_filter,
    }


def _media_origin_route(media: MediaConfig) -> dict[str, Any]:
    """Where the cache filter's own fetch of a miss lands (its request carries the rewritten
    path, the origin Host and the internal token); unreachable without the token, and even with
    it only a GET or HEAD of a video's object: the origin cluster signs whatever it forwards, so
    a leaked token must not become a write or a read of the rest of the bucket."""
    return {
        "match": {
            "prefix": f"/{media.bucket}/{storage_keys.MEDIA_ROOT}",
            "headers": [
                {"name": INTERNAL_HEADER, "string_match": {"exact": _internal_token(media)}},
                {"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}},
            ],
        },
        "route": {
            "cluster": "media_origin",
            "timeout": "30s",
            "retry_policy": {
                "retry_on": "connect-failure,refused-stream,reset,5xx",
                "num_retries": 2,
            },
        },
        # The route is looked up again from the rewritten headers before the response goes
        # back through the filters, so the Lua response side must be enabled here as well.
        "typed_per_filter_config": {
            "envoy.filters.http.lua": _typed(
                "envoy.extensions.filters.http.lua.v3.LuaPerRoute", name="media"
            ),
        },
    }


def _media_cluster(cfg: GatewayConfig, media: MediaConfig) -> dict[str, Any]:
    host, host_header, port, tls = _origin(media)
    signing: dict[str, Any] = {
        "service_name": "s3",
        "region": media.region,
        "use_unsigned_payload": True,  # GET/HEAD have no body; S3 accepts UNSIGNED-PAYLOAD
        "match_excluded_headers": [
            {"prefix": "x-envoy"},
            {"prefix": "x-forwarded"},
            {"exact": "x-request-id"},
        ],
    }
    if media.access_key_id and media.secret_access_key:
        signing["credential_provider"] = {
            "inline_credential": {
                "access_key_id": media.access_key_id,
                "secret_access_key": media.secret_access_key,
            }
        }
    cluster: dict[str, Any] = {
        "name": "media_origin",
        "type": "STATIC" if Endpoint(host, port).is_ip else "LOGICAL_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": _d(cfg.connect_timeout),
        "load_assignment": {
            "cluster_name": "media_origin",
            "endpoints": [{"lb_endpoints": _lb_endpoints([Endpoint(host, port)])}],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={"http_protocol_options": {}},
                common_http_protocol_options={"idle_timeout": "30s"},
                # Upstream filters run after the router's rewrites, so the signature covers the
                # bucket path and the origin's Host exactly as sent.
                http_filters=[
                    {
                        "name": "origin_headers",
                        "typed_config": _typed(
                            "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                            mutations={
                                "request_mutations": [
                                    {"remove": h} for h in ORIGIN_REQUEST_HEADERS_REMOVED
                                ],
                                "response_mutations": [
                                    {"remove": h} for h in ORIGIN_RESPONSE_HEADERS_REMOVED
                                ],
                            },
                        ),
                    },
                    {
                        "name": "envoy.filters.http.aws_request_signing",
                        "typed_config": _typed(
                            "envoy.extensions.filters.http.aws_request_signing.v3.AwsRequestSigning",
                            **signing,
                        ),
                    },
                    {
                        "name": "envoy.filters.http.upstream_codec",
                        "typed_config": _typed(
                            "envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"
                        ),
                    },
                ],
            )
        },
        "circuit_breakers": {
            "thresholds": [
                {"max_connections": 1024, "max_pending_requests": 1024, "max_requests": 4096}
            ]
        },
    }
    if tls:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": _typed(
                "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", sni=host
            ),
        }
    return cluster


def _media_filters(media: MediaConfig) -> list[dict[str, Any]]:
    """The /media-only HTTP filters, in order, all disabled unless a route enables them."""
    filters: list[dict[str, Any]] = []
    if media.authz is not None:
        filters.append(
            {
                "name": "envoy.filters.http.ext_authz",
                "typed_config": _typed(
                    "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
                    transport_api_version="V3",
                    http_service={
                        "server_uri": {
                            "uri": f"http://{media.authz.host}:{media.authz.port}",
                            "cluster": "media_authz",
                            "timeout": "2s",
                        },
                        "path_prefix": "/authz",
                    },
                    failure_mode_allow=False,
                    status_on_error={"code": 503},
                ),
                "disabled": True,
            }
        )
    filters += [
        {
            "name": "envoy.filters.http.lua",
            "typed_config": _typed(
                "envoy.extensions.filters.http.lua.v3.Lua",
                # no default code: only routes naming "media" run it
                source_codes={"media": {"inline_string": _media_lua(media)}},
            ),
        },
        {
            # The cache_v2 extension (see MEDIA_LUA for why not the old CacheConfig one). Its API
            # is tagged work-in-progress in Envoy 1.40, which logs a warning about it at start.
            # The filter keeps its name, which only labels it in this chain.
            "name": "envoy.filters.http.cache",
            "typed_config": _typed(
                "envoy.extensions.filters.http.cache_v2.v3.CacheV2Config",
                typed_config=_typed(
                    "envoy.extensions.http.cache_v2.simple_http_cache.v3.SimpleHttpCacheV2Config"
                ),
                max_body_bytes=media.cache_max_body_bytes,
            ),
            # on for every route (it has no per-route config); gRPC POSTs are never cacheable
        },
    ]
    return filters


def _authz_cluster(cfg: GatewayConfig, authz: Endpoint) -> dict[str, Any]:
    return {
        "name": "media_authz",
        "type": "STATIC" if authz.is_ip else "STRICT_DNS",
        "connect_timeout": _d(cfg.connect_timeout),
        "load_assignment": {
            "cluster_name": "media_authz",
            "endpoints": [{"lb_endpoints": _lb_endpoints([authz])}],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={"http_protocol_options": {}},
            )
        },
    }


# --------------------------------------------------------------------------- render


def render(cfg: GatewayConfig) -> dict[str, Any]:
    """The complete Envoy bootstrap for `cfg` as a plain dict (dump it with to_yaml)."""
    if not cfg.services:
        raise ValueError("the gateway needs at least one service")
    for up in cfg.services:
        if not up.endpoints:
            raise ValueError(f"service {up.service} has no endpoints")
    default = cfg.services[0].cluster  # answers health ("") and reflection for everyone

    routes: list[dict[str, Any]] = []
    if cfg.media is not None:
        routes += [_media_route(cfg.media), _media_origin_route(cfg.media)]
    for up in cfg.services:
        routes += _service_routes(cfg, up)
    routes += [
        _grpc_route(cfg, {"prefix": "/grpc.health.v1.Health/"}, default, "read"),
    ]
    if cfg.reflection:
        routes.append(_grpc_route(cfg, {"prefix": "/grpc.reflection."}, default, "reflection"))
    if cfg.web is not None:
        routes.append({"match": {"prefix": "/"}, "route": {"cluster": "web"}})

    http_filters: list[dict[str, Any]] = [
        {
            "name": "envoy.filters.http.grpc_web",
            "typed_config": _typed("envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"),
        },
        {
            "name": "envoy.filters.http.cors",
            "typed_config": _typed("envoy.extensions.filters.http.cors.v3.Cors"),
        },
    ]
    if cfg.media is not None:
        http_filters += _media_filters(cfg.media)
    http_filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router"),
        }
    )

    hcm = _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="gateway",
        codec_type="AUTO",  # HTTP/1.1 (grpc-web, /media) and h2c (native gRPC) on one port
        stream_idle_timeout=_d(cfg.stream_idle_timeout),
        normalize_path=True,
        merge_slashes=True,
        path_with_escaped_slashes_action="REJECT_REQUEST",
        generate_request_id=True,
        always_set_request_id_in_response=True,
        preserve_external_request_id=True,
        http2_protocol_options={"max_concurrent_streams": 1024},
        route_config={
            "name": "gateway",
            "virtual_hosts": [
                {
                    "name": "streamify",
                    "domains": ["*"],
                    "typed_per_filter_config": {
                        "envoy.filters.http.cors": _typed(
                            "envoy.extensions.filters.http.cors.v3.CorsPolicy",
                            allow_origin_string_match=[
                                {"safe_regex": {"regex": cfg.cors_origins_regex}}
                            ],
                            allow_methods="POST, OPTIONS",
                            allow_headers="authorization,x-grpc-web,x-user-agent,grpc-timeout,content-type,x-request-id",
                            expose_headers="grpc-status,grpc-message,grpc-status-details-bin,x-request-id",
                            max_age="86400",
                        )
                    },
                    "routes": routes,
                }
            ],
        },
        http_filters=http_filters,
    )

    clusters = [_grpc_cluster(cfg, up) for up in cfg.services]
    if cfg.media is not None:
        clusters.append(_media_cluster(cfg, cfg.media))
        if cfg.media.authz is not None:
            clusters.append(_authz_cluster(cfg, cfg.media.authz))
    if cfg.web is not None:
        clusters.append(
            {
                "name": "web",
                "type": _cluster_type([cfg.web]),
                "connect_timeout": _d(cfg.connect_timeout),
                "load_assignment": {
                    "cluster_name": "web",
                    "endpoints": [{"lb_endpoints": _lb_endpoints([cfg.web])}],
                },
            }
        )

    return {
        "admin": {"address": _addr(cfg.admin_host, cfg.admin_port)},
        "static_resources": {
            "listeners": [
                {
                    "name": "gateway",
                    "address": _addr(cfg.listen_host, cfg.listen_port),
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": hcm,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": clusters,
        },
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": _typed(
                        "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        max_active_downstream_connections=cfg.max_downstream_connections,
                    ),
                }
            ]
        },
    }


def to_yaml(cfg: GatewayConfig | dict[str, Any]) -> str:
    doc = render(cfg) if isinstance(cfg, GatewayConfig) else cfg
    text: str = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)  # no stream: a str
    return text


def write(cfg: GatewayConfig, path: str | Path) -> Path:
    """Writes the rendered YAML, readable by its owner only (it may hold S3 credentials)."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(to_yaml(cfg))
    return path
