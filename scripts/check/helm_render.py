"""Checks of the reactor Helm chart, run by scripts/check/helm in its venv.

Renders the chart with Helm's own engine (helm-python-sdk: libhelm_c, the Helm
v4 Go SDK behind a C ABI, so no helm binary), which also enforces
values.schema.json, and checks the result offline:

* built-in kinds against the Kubernetes OpenAPI schemas bundled with
  kubernetes-validate, strict (unknown fields rejected), for the oldest
  Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest
  bundled. This is `kubernetes-validate --strict`, called as a library: the CLI
  only *warns* about kinds it has no schema for and still exits 0.
* CRD kinds (ServiceMonitor, ScaledObject, TriggerAuthentication) have no
  bundled schema. Rather than skip them, each is checked against a small
  hand-written subset of its CRD schema below: apiVersion, kind, required
  fields, and no unknown fields at the levels the chart writes. It is not the
  operators' full schema; a field the chart never writes is not covered.
* invariants of this chart: security context, probes, replicas vs.
  partitions, secrets never in ConfigMaps, every *_FILE path mounted, the TOML
  overlay round-trips, selectors match, the test hook curls the Service.
* negative cases: values the schema must reject and values the templates
  must refuse (`fail`), each with the expected error.

Prints PASS/FAIL per check and a closing "N passed, N failed" line; exits 1 on
any failure.
"""

from __future__ import annotations

import argparse
import hashlib
import copy
import functools
import json
import re
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, Callable

import helm_python as helm
import jsonschema
import yaml
from kubernetes_validate import utils as kv

REPO = Path(__file__).resolve().parents[2]
RELEASE = "reactor"
NAMESPACE = "analytics"
# Oldest supported (Chart.yaml kubeVersion >=1.27) and newest bundled.
K8S_VERSIONS = ["1.27.0", "1.37.0"]
TEST_IMAGE = "curlimages/curl:8.11.1"
CONFIG_PATH = "/etc/reactor/config.toml"

# The REACTOR__* variables Reactor reads that the chart may set (the names
# the config loader maps to kafka.*, clickhouse.*, ... keys). A typo here or
# in the chart fails the check.
KNOWN_ENV = {
    "REACTOR__KAFKA__BROKERS",
    "REACTOR__KAFKA__GROUP_ID",
    "REACTOR__KAFKA__PREFETCH_KBYTES_PER_PARTITION",
    "REACTOR__KAFKA__TLS__ENABLED",
    "REACTOR__KAFKA__TLS__CA_FILE",
    "REACTOR__KAFKA__TLS__CERT_FILE",
    "REACTOR__KAFKA__TLS__KEY_FILE",
    "REACTOR__KAFKA__TLS__KEY_PASSWORD",
    "REACTOR__KAFKA__TLS__KEY_PASSWORD_FILE",
    "REACTOR__KAFKA__SASL__MECHANISM",
    "REACTOR__KAFKA__SASL__USERNAME",
    "REACTOR__KAFKA__SASL__PASSWORD",
    "REACTOR__KAFKA__SASL__PASSWORD_FILE",
    "REACTOR__CLICKHOUSE__URL",
    "REACTOR__CLICKHOUSE__USER",
    "REACTOR__CLICKHOUSE__PASSWORD",
    "REACTOR__CLICKHOUSE__PASSWORD_FILE",
    "REACTOR__CLICKHOUSE__TLS__CA_FILE",
    "REACTOR__SCHEMA_REGISTRY__URL",
    "REACTOR__SCHEMA_REGISTRY__USERNAME",
    "REACTOR__SCHEMA_REGISTRY__PASSWORD",
    "REACTOR__SCHEMA_REGISTRY__PASSWORD_FILE",
    "REACTOR__SCHEMA_REGISTRY__TLS__CA_FILE",
    "REACTOR__HTTP__LISTEN",
    "REACTOR__LOG__FORMAT",
    "REACTOR__LOG__LEVEL",
}

# ----------------------------------------------------------------- CRD subsets
_STR = {"type": "string", "minLength": 1}
_STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
_META = {
    "type": "object",
    "required": ["name", "labels"],
    "properties": {"name": _STR, "namespace": _STR, "labels": _STRMAP, "annotations": _STRMAP},
    "additionalProperties": False,
}


def _crd(api_version: str, kind: str, spec: dict) -> dict:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _META,
            "spec": spec,
        },
    }


_LABEL_SELECTOR = {
    "type": "object",
    "properties": {"matchLabels": {**_STRMAP, "minProperties": 1}, "matchExpressions": {"type": "array"}},
    "additionalProperties": False,
}
_PROM_DURATION = {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}

CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _crd("monitoring.coreos.com/v1", "ServiceMonitor", {
        "type": "object",
        "required": ["selector", "endpoints"],
        "additionalProperties": False,
        "properties": {
            "selector": _LABEL_SELECTOR,
            "namespaceSelector": {
                "type": "object", "additionalProperties": False,
                "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": _STR}},
            },
            "jobLabel": _STR,
            "endpoints": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["port"], "additionalProperties": False,
                "properties": {
                    "port": _STR, "path": {"type": "string", "pattern": "^/"},
                    "interval": _PROM_DURATION, "scrapeTimeout": _PROM_DURATION,
                    "relabelings": {"type": "array", "items": {"type": "object"}},
                    "metricRelabelings": {"type": "array", "items": {"type": "object"}},
                },
            }},
        },
    }),
    ("keda.sh/v1alpha1", "ScaledObject"): _crd("keda.sh/v1alpha1", "ScaledObject", {
        "type": "object",
        "required": ["scaleTargetRef", "triggers"],
        "additionalProperties": False,
        "properties": {
            "scaleTargetRef": {
                "type": "object", "required": ["name"], "additionalProperties": False,
                "properties": {"apiVersion": _STR, "kind": _STR, "name": _STR, "envSourceContainerName": _STR},
            },
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "advanced": {
                "type": "object", "additionalProperties": False,
                "properties": {
                    "restoreToOriginalReplicaCount": {"type": "boolean"},
                    "horizontalPodAutoscalerConfig": {
                        "type": "object", "additionalProperties": False,
                        "properties": {"name": _STR, "behavior": {"type": "object"}},
                    },
                },
            },
            "triggers": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["type", "metadata"], "additionalProperties": False,
                "properties": {
                    "type": {"const": "kafka"},
                    "name": _STR,
                    # map[string]string in the CRD: numbers must be quoted.
                    "metadata": {
                        "type": "object",
                        "required": ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"],
                        "additionalProperties": {"type": "string"},
                        "properties": {
                            "lagThreshold": {"type": "string", "pattern": "^[1-9][0-9]*$"},
                            "activationLagThreshold": {"type": "string", "pattern": "^[0-9]+$"},
                            "offsetResetPolicy": {"enum": ["earliest", "latest"]},
                            "allowIdleConsumers": {"enum": ["true", "false"]},
                            "sasl": {"enum": ["plaintext", "scram_sha256", "scram_sha512"]},
                            "tls": {"enum": ["enable", "disable"]},
                        },
                    },
                    "authenticationRef": {
                        "type": "object", "required": ["name"], "additionalProperties": False,
                        "properties": {"name": _STR, "kind": {"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]}},
                    },
                },
            }},
        },
    }),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): _crd("keda.sh/v1alpha1", "TriggerAuthentication", {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "env": {"type": "array", "items": {
                "type": "object", "required": ["parameter", "name"], "additionalProperties": False,
                "properties": {"parameter": _STR, "name": _STR, "containerName": _STR},
            }},
            "secretTargetRef": {"type": "array", "items": {
                "type": "object", "required": ["parameter", "name", "key"], "additionalProperties": False,
                "properties": {
                    "parameter": {"enum": ["username", "password", "ca", "cert", "key", "keyPassword"]},
                    "name": _STR, "key": _STR,
                },
            }},
        },
    }),
}


# ----------------------------------------------------------------- reporting
class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, fn: Callable[[], str | None]) -> None:
        """Runs fn; an AssertionError or HelmError is a failure. fn may return
        a note to print after PASS."""
        try:
            note = fn()
        except (AssertionError, helm.HelmError, jsonschema.ValidationError, kv.ValidationError) as exc:
            self.failed += 1
            print(f"FAIL  {name}\n      {_one_line(exc)}", flush=True)
            return
        self.passed += 1
        print(f"PASS  {name}" + (f"  ({note})" if note else ""), flush=True)

    def skip(self, name: str, why: str) -> None:
        print(f"SKIP  {name}  ({why})", flush=True)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, kv.ValidationError):
        return f"k8s {exc.version}: {'.'.join(str(p) for p in exc.absolute_path)}: {exc.message}"
    if isinstance(exc, jsonschema.ValidationError):
        return f"{'.'.join(str(p) for p in exc.absolute_path)}: {exc.message}"
    return " ".join(str(exc).split())[:600]


# ----------------------------------------------------------------- helpers
def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@functools.lru_cache(maxsize=None)
def _schema_contents(filename: str, desired_version: str) -> Any:
    return _original_schema_contents(filename, desired_version)


# kubernetes-validate re-reads the multi-megabyte _definitions.json for every
# object; the schemas are read-only, so cache them (this halves the run time).
_original_schema_contents = kv.schema_contents
kv.schema_contents = _schema_contents


class Rendered:
    """One rendering: the manifests by template, parsed objects, and values."""

    def __init__(self, chart: helm.Chart, values: dict | None) -> None:
        self.values = chart.merge_values(values or {})
        self.files = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        self.objects: list[dict] = []
        for template, text in sorted(self.files.items()):
            if template.endswith("NOTES.txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    doc.setdefault("__template", template)
                    self.objects.append(doc)

    def of(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, component: str | None = None) -> dict:
        found = [o for o in self.of(kind)
                 if component is None or o["metadata"]["labels"].get("app.kubernetes.io/component") == component]
        assert len(found) == 1, f"expected one {kind} ({component or 'any'}), found {len(found)}"
        return found[0]

    def notes(self) -> str:
        return next(v for k, v in self.files.items() if k.endswith("NOTES.txt"))


def strip(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k != "__template"}


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def humantime_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    total = 0.0
    for number, unit in re.findall(r"(\d+)\s*(ms|s|m|h|d)", text):
        total += int(number) * units[unit]
    return total


def numbers_as_float(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: numbers_as_float(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers_as_float(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def keys_deep(value: Any, path: str = "") -> list[str]:
    if not isinstance(value, dict):
        return []
    out = []
    for k, v in value.items():
        out.append(f"{path}{k}")
        out += keys_deep(v, f"{path}{k}.")
    return out


# ----------------------------------------------------------------- checks
def validate_kinds(r: Rendered) -> str:
    builtin, crds = 0, 0
    for obj in r.objects:
        key = (obj["apiVersion"], obj["kind"])
        name = f"{obj['kind']}/{obj['metadata']['name']} ({obj['__template']})"
        if key in CRD_SCHEMAS:
            try:
                jsonschema.validate(strip(obj), CRD_SCHEMAS[key])
            except jsonschema.ValidationError as exc:
                raise AssertionError(f"{name}: CRD subset: {_one_line(exc)}") from exc
            crds += 1
            continue
        for version in K8S_VERSIONS:
            try:
                kv.validate(strip(obj), version, strict=True)
            except kv.SchemaNotFoundError as exc:
                raise AssertionError(f"{name}: no schema for {key} and no CRD subset here") from exc
            except kv.ValidationError as exc:
                raise AssertionError(f"{name}: {_one_line(exc)}") from exc
        builtin += 1
    return f"{builtin} built-in objects strict against k8s {' and '.join(K8S_VERSIONS)}; {crds} CRD objects against subsets"


def check_pod_spec(r: Rendered) -> None:
    # Every pod the chart creates (processor, create-topics Job, helm test).
    pods = [("Deployment", r.one("Deployment")["spec"]["template"]["spec"])]
    pods += [(f"Job/{j['metadata']['name']}", j["spec"]["template"]["spec"]) for j in r.of("Job")]
    pods += [(f"Pod/{p['metadata']['name']}", p["spec"]) for p in r.of("Pod")]
    for where, spec in pods:
        psc = spec["securityContext"]
        assert psc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot is not true"
        assert spec.get("automountServiceAccountToken") is False, f"{where}: service account token mounted"
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem is not true"
            assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation is not false"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities.drop is not [ALL]"
            assert c.get("resources", {}).get("limits"), f"{where}: {c['name']} has no resource limits"
    pod = pods[0][1]
    (c,) = [c for c in pod["containers"] if c["name"] == "reactor"]
    assert pod["securityContext"].get("runAsUser") == 10001, "the processor does not run as uid 10001"
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, "liveness is not /healthz"
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, "readiness is not /readyz"
    assert c["args"] == ["--config", CONFIG_PATH, "run"], f"args: {c['args']}"
    if not r.values["resources"].get("limits", {}).get("memory"):
        # The memory budget follows the prefetch: a pod may read every partition.
        prefetch_mi = -(-r.values["kafka"]["prefetchKbytesPerPartition"] // 1024)
        want = 256 + 3 * r.values["partitions"] * (prefetch_mi + r.values["memoryPerPartitionMi"])
        got = c["resources"]["limits"]["memory"]
        assert got == f"{want}Mi", f"memory limit {got}, the budget is {want}Mi"
        assert c["resources"]["requests"]["memory"] == f"{want // 2}Mi", "memory request is not half the limit"
    env = {e["name"]: e for e in c["env"]}
    port = next(p["containerPort"] for p in c["ports"] if p["name"] == "http")
    assert env["REACTOR__HTTP__LISTEN"]["value"] == f"0.0.0.0:{port}", "http.listen is not the container port"
    assert any(m["mountPath"] == CONFIG_PATH for m in c["volumeMounts"]), "config.toml not mounted"
    toml = tomllib.loads(r.one("ConfigMap", "processor")["data"]["config.toml"])
    drain = humantime_seconds(toml.get("pipeline", {}).get("drain_timeout", "30s"))
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > drain, f"terminationGracePeriodSeconds {grace} is not above pipeline.drain_timeout {drain}s"


def check_env_and_files(r: Rendered) -> str:
    pods = [r.one("Deployment")["spec"]["template"]["spec"]]
    pods += [j["spec"]["template"]["spec"] for j in r.of("Job")]
    files = 0
    for pod in pods:
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in pod["containers"]:
            names = [e["name"] for e in c.get("env", [])]
            assert len(names) == len(set(names)), f"duplicate env names in {c['name']}"
            chart_env = [n for n in names if n.startswith("REACTOR__")]
            unknown = set(chart_env) - KNOWN_ENV
            assert not unknown, f"unknown REACTOR__ variables: {sorted(unknown)}"
            for e in c.get("env", []):
                if not e["name"].endswith("_FILE"):
                    continue
                path = Path(e["value"])
                mount = next((m for m in c["volumeMounts"] if m["mountPath"] == str(path.parent)), None)
                assert mount, f"{e['name']}={path}: no volume mounted at {path.parent}"
                secret = volumes[mount["name"]].get("secret")
                assert secret, f"{e['name']}: {mount['name']} is not a Secret volume"
                assert any(i["path"] == path.name for i in secret["items"]), \
                    f"{e['name']}: Secret {secret['secretName']} does not project {path.name}"
                files += 1
    return f"{files} *_FILE paths mounted"


def check_no_secrets_in_configmaps(r: Rendered) -> None:
    assert not r.of("Secret"), "the chart must not create Secrets (it references existing ones)"
    for cm in r.of("ConfigMap"):
        for key, text in cm.get("data", {}).items():
            if key.endswith(".toml"):
                bad = [k for k in keys_deep(tomllib.loads(text)) if re.search(r"(?i)password$", k)]
                assert not bad, f"ConfigMap {cm['metadata']['name']} has {bad}"


def check_toml_roundtrip(r: Rendered) -> None:
    text = r.one("ConfigMap", "processor")["data"]["config.toml"]
    parsed = tomllib.loads(text)
    assert numbers_as_float(parsed) == numbers_as_float(r.values["config"]), \
        f"config.toml {parsed} != values.config {r.values['config']}"
    # Whole numbers must be TOML integers: Reactor's integer keys reject 2000.0.
    for line in text.splitlines():
        assert not re.search(r"=\s*-?\d+\.0\s*$", line), f"integer written as float: {line!r}"


def check_replicas(r: Rendered) -> str:
    partitions = r.values["partitions"]
    dep = r.one("Deployment")
    notes = []
    if "replicas" in dep["spec"]:
        assert dep["spec"]["replicas"] <= partitions, "replicas above partitions"
        notes.append(f"replicas {dep['spec']['replicas']}")
    for so in r.of("ScaledObject"):
        assert so["spec"]["maxReplicaCount"] <= partitions, "KEDA maxReplicaCount above partitions"
        assert "replicas" not in dep["spec"], "Deployment sets replicas while KEDA owns them"
        notes.append(f"KEDA {so['spec']['minReplicaCount']}..{so['spec']['maxReplicaCount']}")
    for hpa in r.of("HorizontalPodAutoscaler"):
        assert hpa["spec"]["maxReplicas"] <= partitions, "HPA maxReplicas above partitions"
        assert "replicas" not in dep["spec"], "Deployment sets replicas while the HPA owns them"
        notes.append(f"HPA {hpa['spec']['minReplicas']}..{hpa['spec']['maxReplicas']}")
    assert not (r.of("ScaledObject") and r.of("HorizontalPodAutoscaler")), "KEDA and an HPA together"
    return f"partitions {partitions}: " + ", ".join(notes)


def check_selectors(r: Rendered) -> None:
    dep = r.one("Deployment")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert matches(dep["spec"]["selector"]["matchLabels"], pod_labels), "Deployment selector"
    svc = r.one("Service")
    assert matches(svc["spec"]["selector"], pod_labels), "Service selector does not match the pods"
    for pdb in r.of("PodDisruptionBudget"):
        assert matches(pdb["spec"]["selector"]["matchLabels"], pod_labels), "PDB selector"
    for hook_pod in r.of("Pod") + [j["spec"]["template"] for j in r.of("Job")]:
        assert not matches(svc["spec"]["selector"], hook_pod["metadata"]["labels"]), \
            "a hook pod matches the Service selector"
    for sm in r.of("ServiceMonitor"):
        assert matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]), "ServiceMonitor selector"
        ports = {p["name"] for p in svc["spec"]["ports"]}
        assert all(ep["port"] in ports for ep in sm["spec"]["endpoints"]), "ServiceMonitor port not on Service"
        assert sm["spec"]["endpoints"][0]["path"] == "/metrics"


def check_test_hook(r: Rendered) -> None:
    (pod,) = [p for p in r.of("Pod") if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    svc = r.one("Service")
    (c,) = pod["spec"]["containers"]
    assert c["image"] == TEST_IMAGE, f"test image {c['image']}"
    url = f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}/readyz"
    assert url in c["args"], f"test pod does not curl {url}: {c['args']}"
    assert "--fail" in c["args"], "curl without --fail passes on HTTP errors"


def check_keda(r: Rendered) -> str:
    (so,) = r.of("ScaledObject")
    auths = {a["metadata"]["name"] for a in r.of("TriggerAuthentication")}
    kafka = r.values["kafka"]
    for t in so["spec"]["triggers"]:
        md = t["metadata"]
        assert md["bootstrapServers"] == ",".join(kafka["brokers"]), "bootstrapServers"
        assert md["consumerGroup"] == kafka["groupId"], "consumerGroup"
        if "authenticationRef" in t:
            assert t["authenticationRef"]["name"] in auths, "authenticationRef to a missing TriggerAuthentication"
        if kafka["sasl"]["mechanism"] or (kafka["tls"]["enabled"] and kafka["tls"]["existingSecret"]):
            assert "authenticationRef" in t, "credentials configured but the trigger has no authenticationRef"
    topics = [t["metadata"]["topic"] for t in so["spec"]["triggers"]]
    return "triggers on " + ", ".join(topics)


def check_dashboards(r: Rendered, chart_dir: Path) -> str:
    files = sorted((chart_dir / "dashboards").glob("*.json"))
    cms = [c for c in r.of("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(cms) == len(files), f"{len(files)} dashboards but {len(cms)} ConfigMaps"
    for f in files:
        (cm,) = [c for c in cms if f.name in c["data"]]
        assert json.loads(cm["data"][f.name]) == json.loads(f.read_text()), f"{f.name} differs"
    return ", ".join(f.name for f in files)


def lint(report: Report, chart_dir: Path, label: str, values: dict | None) -> None:
    def run() -> str:
        result = helm.lint(str(chart_dir), values, strict=True, namespace=NAMESPACE)
        problems = [m for m in result["messages"] if m["severity"] >= 2] + result.get("errors", [])
        assert not problems, "; ".join(str(p) for p in problems)
        infos = [m["error"] for m in result["messages"]]
        return "; ".join(infos) if infos else ""

    report.check(f"helm lint --strict: {label}", run)


def render_case(report: Report, chart: helm.Chart, chart_dir: Path, label: str, values: dict | None) -> None:
    holder: dict[str, Rendered] = {}

    def render() -> str:
        r = Rendered(chart, values)
        holder["r"] = r
        kinds = sorted({f"{o['kind']}" for o in r.objects})
        assert r.notes().strip(), "NOTES.txt is empty"
        return f"{len(r.objects)} objects: {', '.join(kinds)}"

    report.check(f"[{label}] helm template (values.schema.json enforced)", render)
    r = holder.get("r")
    if r is None:
        return
    report.check(f"[{label}] manifests valid", lambda: validate_kinds(r))
    report.check(f"[{label}] pods: non-root (10001), read-only root, drop ALL, limits; probes, --config, grace > drain",
                 lambda: check_pod_spec(r))
    report.check(f"[{label}] env: known REACTOR__ names, no duplicates, *_FILE mounted",
                 lambda: check_env_and_files(r))
    report.check(f"[{label}] no Secret objects, no password keys in ConfigMaps",
                 lambda: check_no_secrets_in_configmaps(r))
    report.check(f"[{label}] config.toml parses and equals values.config", lambda: check_toml_roundtrip(r))
    report.check(f"[{label}] replicas <= partitions", lambda: check_replicas(r))
    report.check(f"[{label}] selectors (Service, PDB, ServiceMonitor; hooks excluded)", lambda: check_selectors(r))
    report.check(f"[{label}] helm test pod curls the Service's /readyz", lambda: check_test_hook(r))
    if r.of("ScaledObject"):
        report.check(f"[{label}] KEDA triggers match kafka values", lambda: check_keda(r))
    if r.values["dashboards"]["enabled"]:
        report.check(f"[{label}] Grafana dashboard ConfigMaps", lambda: check_dashboards(r, chart_dir))
    if r.values["replay"]["enabled"]:
        report.check(f"[{label}] replay Job runs reactor replay over the range", lambda: check_replay(r))


def check_replay(r: Rendered) -> str:
    jobs = [j for j in r.of("Job")
            if j["metadata"]["labels"].get("app.kubernetes.io/component") == "replay"]
    assert len(jobs) == 1, f"{len(jobs)} replay Jobs"
    (job,) = jobs
    spec = job["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    replay = r.values["replay"]
    want = ["--config", CONFIG_PATH, "replay", "--from", replay["from"], "--to", replay["to"],
            "--topics", ",".join(replay["topics"])]
    assert c["args"][:len(want)] == want, f"args: {c['args']}"
    assert ("--include-late" in c["args"]) == replay["includeLate"], "--include-late"
    assert spec["restartPolicy"] == "Never", "a replay Job must not restart in place"
    assert "helm.sh/hook" not in job["metadata"].get("annotations", {}), "replay is not a hook"
    # Named after what it replays: another range or option, another Job.
    run = "|".join([replay["from"], replay["to"], ",".join(replay["topics"]),
                    str(replay["includeLate"]).lower(), str(replay.get("dryRun", False)).lower()])
    digest = hashlib.sha256(run.encode()).hexdigest()[:10]
    assert job["metadata"]["name"].endswith(f"-replay-{digest}"), f"name: {job['metadata']['name']}"
    return f"{job['metadata']['name']}: {' '.join(c['args'][2:])}"


def expect_rejected(report: Report, chart: helm.Chart, label: str, values: dict,
                    error: type[helm.HelmError], needle: str) -> None:
    def run() -> None:
        try:
            chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        except helm.HelmError as exc:
            assert isinstance(exc, error), f"expected {error.__name__}, got {type(exc).__name__}: {exc}"
            assert needle in str(exc), f"error does not mention {needle!r}: {_one_line(exc)}"
            return
        raise AssertionError("rendered without error")

    kind = "schema" if error is helm.HelmValuesError else "template"
    report.check(f"rejected by {kind}: {label}", run)


# ----------------------------------------------------------------- cases
# Environment-variable secrets, mutual TLS, user names from Secrets, KEDA
# with a TriggerAuthentication carrying certificates: the branches the
# production example does not take.
VARIANT_ENV_SECRETS = {
    "partitions": 6,
    "replicaCount": 3,
    "image": {"digest": "sha256:" + "ab" * 32},
    "kafka": {
        "tls": {"enabled": True, "existingSecret": "kafka-client", "caKey": "ca.crt",
                "certKey": "tls.crt", "keyKey": "tls.key", "keyPasswordKey": "key-password"},
        "sasl": {"mechanism": "SCRAM-SHA-256", "usernameKey": "username", "existingSecret": "kafka-sasl"},
    },
    "clickhouse": {"existingSecret": "clickhouse", "userKey": "user", "user": ""},
    "schemaRegistry": {"url": "http://schema-registry:8081", "username": "reactor", "existingSecret": "registry"},
    "autoscaling": {"keda": {"enabled": True, "maxReplicaCount": 6, "topics": ["content.events"]}},
    "podDisruptionBudget": {"minAvailable": "50%", "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    "config": {"trend": {"threshold": 12.5}, "anomaly": {"alpha": 0.1, "warm_up": 20},
               "limits": {"max_keys_per_partition": 500000},
               "kafka": {"properties": {"socket.keepalive.enable": "true"}}},
    "env": [{"name": "RUST_BACKTRACE", "value": "1"}],
}
VARIANT_HPA = {
    "partitions": 8,
    "replay": {"enabled": True, "from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z",
               "topics": ["conversion"], "includeLate": True},
    "autoscaling": {"hpa": {"enabled": True, "minReplicas": 2, "maxReplicas": 8}},
    "podDisruptionBudget": {"enabled": False},
    "serviceAccount": {"create": False},
}

NEGATIVE_SCHEMA = [
    ("replicaCount: -1", {"replicaCount": -1}, "/replicaCount"),
    ("unknown top-level key (replicas)", {"replicas": 2}, "'replicas' not allowed"),
    ("unknown nested key (kafka.sasl.passwrd)", {"kafka": {"sasl": {"passwrd": "x"}}}, "'passwrd' not allowed"),
    ("kafka.sasl.mechanism: GSSAPI", {"kafka": {"sasl": {"mechanism": "GSSAPI"}}}, "/kafka/sasl/mechanism"),
    ("clickhouse.url without scheme", {"clickhouse": {"url": "clickhouse:8123"}}, "/clickhouse/url"),
    ("kafka.brokers empty", {"kafka": {"brokers": []}}, "/kafka/brokers"),
    ("unknown config section (config.windoes)", {"config": {"windoes": {"size": "1m"}}}, "'windoes' not allowed"),
    ("log.format: xml", {"log": {"format": "xml"}}, "/log/format"),
    ("partitions: 0", {"partitions": 0}, "/partitions"),
    ("containerPort: 80 (privileged)", {"containerPort": 80}, "/containerPort"),
    ("image.tag as a number", {"image": {"tag": 1.2}}, "/image/tag"),
    ("replay.from not RFC 3339", {"replay": {"enabled": True, "from": "yesterday", "to": "2026-03-02T00:00:00Z"}},
     "/replay/from"),
]
NEGATIVE_TEMPLATE = [
    ("replicaCount 5 > partitions 4", {"replicaCount": 5, "partitions": 4}, "is above partitions"),
    ("KEDA maxReplicaCount 16 > partitions 12",
     {"partitions": 12, "autoscaling": {"keda": {"enabled": True, "maxReplicaCount": 16}}}, "is above partitions"),
    ("HPA maxReplicas 5 > partitions 4",
     {"autoscaling": {"hpa": {"enabled": True, "maxReplicas": 5}}}, "is above partitions"),
    ("KEDA and HPA both enabled",
     {"autoscaling": {"keda": {"enabled": True}, "hpa": {"enabled": True}}}, "Enable one"),
    ("password in config (config.clickhouse.password)",
     {"config": {"clickhouse": {"password": "hunter2"}}}, "secrets must not go into the ConfigMap"),
    ("password in config (config.kafka.properties.\"sasl.password\")",
     {"config": {"kafka": {"properties": {"sasl.password": "hunter2"}}}}, "secrets must not go into the ConfigMap"),
    ("chart-managed key in config (config.kafka.brokers)",
     {"config": {"kafka": {"brokers": ["x:9092"]}}}, "managed by the chart"),
    ("chart-managed key in config (config.kafka.prefetch_kbytes_per_partition)",
     {"config": {"kafka": {"prefetch_kbytes_per_partition": 1024}}}, "kafka.prefetchKbytesPerPartition"),
    ("SASL without existingSecret", {"kafka": {"sasl": {"mechanism": "PLAIN", "username": "u"}}},
     "existingSecret is empty"),
    ("mTLS cert without key",
     {"kafka": {"tls": {"enabled": True, "existingSecret": "s", "certKey": "tls.crt"}}}, "go together"),
    ("env duplicates a chart variable",
     {"env": [{"name": "REACTOR__KAFKA__BROKERS", "value": "x:9092"}]}, "already set by the chart"),
    ("ClickHouse CA with an http:// url",
     {"clickhouse": {"tls": {"existingSecret": "ca"}}}, "is not https://"),
    ("replay without a range", {"replay": {"enabled": True}}, "needs replay.from and replay.to"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=Path, default=REPO / "helm" / "reactor")
    parser.add_argument("--production-values", type=Path)
    args = parser.parse_args()
    chart_dir: Path = args.chart.resolve()
    prod_file = args.production_values or chart_dir / "ci" / "production-values.yaml"
    production = yaml.safe_load(prod_file.read_text())
    has_dashboards = any((chart_dir / "dashboards").glob("*.json"))

    started = time.monotonic()
    report = Report()
    print(f"helm engine {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__}), "
          f"kubernetes-validate schemas {', '.join(K8S_VERSIONS)}; chart {chart_dir.relative_to(REPO) if chart_dir.is_relative_to(REPO) else chart_dir}")

    if not has_dashboards:
        # The dashboards are written separately; until they exist the
        # production case runs without them, and enabling them must fail.
        report.skip("Grafana dashboard ConfigMaps", f"no {chart_dir.name}/dashboards/*.json yet; "
                    "production case rendered with dashboards.enabled=false")
        production = deep_merge(production, {"dashboards": {"enabled": False}})

    cases = [
        ("default values", None),
        (f"production: {prod_file.name}", production),
        ("env secrets + mTLS + KEDA", VARIANT_ENV_SECRETS),
        ("HPA", VARIANT_HPA),
    ]
    for label, values in cases[:2]:
        lint(report, chart_dir, label, values)
    with helm.Chart.load(str(chart_dir)) as chart:
        for label, values in cases:
            render_case(report, chart, chart_dir, label, values)
        for label, values, needle in NEGATIVE_SCHEMA:
            expect_rejected(report, chart, label, values, helm.HelmValuesError, needle)
        for label, values, needle in NEGATIVE_TEMPLATE:
            expect_rejected(report, chart, label, values, helm.HelmRenderError, needle)
        if not has_dashboards:
            expect_rejected(report, chart, "dashboards.enabled without dashboards/*.json",
                            {"dashboards": {"enabled": True}}, helm.HelmRenderError, "no dashboards/*.json")

    print(f"helm chart checks took {time.monotonic() - started:.1f}s")
    print(f"helm: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
