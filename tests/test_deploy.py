"""deploy/kubernetes and docker-compose.yml: validated against the Kubernetes schemas offline, and
cross-checked against the settings model and the app's routes (no cluster or Docker needed). The
Dockerfile has its own tests (test_dockerfile.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from relay.app import admin_app, create_app
from relay.keys import GROUP, Keys
from relay.settings import ENV_PREFIX, Settings
from relay.store.connect import connect

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"
KNOWN_ENV = {Settings.env_name(n) for n in Settings.model_fields} | {f"{ENV_PREFIX}CONFIG"}
KNOWN_ENV |= {f"{n}_FILE" for n in KNOWN_ENV}


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def one(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name)


def config_map() -> dict[str, str]:
    data: dict[str, str] = one("ConfigMap", "relay-config")["data"]
    return data


def settings_from(env: dict[str, str]) -> Settings:
    """The settings a pod with this environment gets (secrets stubbed, validation real)."""
    values: dict[str, Any] = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in env.items()}
    return Settings(**values)


def container(deployment: str) -> dict[str, Any]:
    spec: dict[str, Any] = one("Deployment", deployment)["spec"]["template"]["spec"]
    return dict(spec["containers"][0])


def routes(role: str, *, admin: bool = False) -> set[str]:
    """The paths the app serves for ``serve`` or ``work`` on RELAY_PORT (or, ``admin``, on
    RELAY_ADMIN_PORT), built (not started) as runtime does."""
    settings = settings_from(config_map())
    parts: dict[str, Any] = {"listener": True, "api": True} if role == "serve" else {}
    if role == "work":
        parts = {"listener": False, "api": False, "workers": 1}
    app = create_app(settings, connect("redis://127.0.0.1:1/0"), **parts)
    served = admin_app(app) if admin else app
    return {resource.canonical for resource in served.router.resources()}


# --- Kubernetes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc", [d for d in manifests() if d["apiVersion"] != "keda.sh/v1alpha1"], ids=lambda d: d["kind"]
)
def test_manifest_is_valid_for_kubernetes(doc: dict[str, Any]) -> None:
    """Every core manifest passes kubernetes-validate (strict: no unknown fields), offline."""
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_catches_a_misspelt_field() -> None:
    """The validator really validates: a typo in a probe fails."""
    doc = copy.deepcopy(one("Deployment", "relay-serve"))
    doc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_keda_scaled_object_scales_workers_on_every_partition_lag() -> None:
    """KEDA's CRD has no schema in kubernetes-validate, so its required fields are checked here:
    target, redis-streams triggers on each partition's events stream, group, lag threshold."""
    scaled = one("ScaledObject", "relay-work")
    settings = settings_from(config_map())
    redis = urlparse(settings.redis_url)
    assert scaled["spec"]["scaleTargetRef"]["name"] == one("Deployment", "relay-work")["metadata"]["name"]
    assert scaled["spec"]["minReplicaCount"] >= 1, "workers also move due retries: keep one"
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"redis-streams"}
    metadata = [t["metadata"] for t in triggers]
    assert {m["stream"] for m in metadata} == set(Keys(settings.key_prefix, settings.partitions).all_events())
    for m in metadata:
        assert m["consumerGroup"] == GROUP
        assert m["address"] == f"{redis.hostname}:{redis.port}"
        assert int(m["lagCount"]) > 0 and int(m["activationLagCount"]) >= 0
        assert set(m) <= {"address", "stream", "consumerGroup", "lagCount", "activationLagCount"}


def env_names_in_manifests() -> set[str]:
    names = set(config_map())
    for deployment in ("relay-serve", "relay-work"):
        names |= {e["name"] for e in container(deployment).get("env", [])}
    return {n for n in names if n.startswith(ENV_PREFIX)}


def test_every_variable_the_manifests_set_is_a_setting() -> None:
    """A RELAY_* name in the ConfigMap or a Deployment exists in relay.settings.Settings."""
    assert env_names_in_manifests() - KNOWN_ENV == set()


def test_config_map_values_are_valid_settings() -> None:
    """The ConfigMap's values pass the settings model's validation."""
    settings = settings_from(config_map())
    assert settings.host == "0.0.0.0"
    assert settings.redis_url is not None


@pytest.mark.parametrize(("deployment", "role"), [("relay-serve", "serve"), ("relay-work", "work")])
def test_ports_and_probes_match_the_app(deployment: str, role: str) -> None:
    """The container runs its role on RELAY_PORT and RELAY_ADMIN_PORT; the probes ask paths
    RELAY_PORT serves, and Prometheus's annotations the admin port's /metrics."""
    spec = container(deployment)
    settings = settings_from(config_map())
    assert spec["args"] == [role]
    port = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert port == {"http": settings.port, "admin": settings.admin_port}
    assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"/healthz", "/readyz"} <= routes(role)
    assert "/metrics" in routes(role, admin=True) and "/metrics" not in routes(role)
    annotations = one("Deployment", deployment)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.admin_port)
    assert annotations["prometheus.io/path"] == "/metrics"
    if role == "serve":
        assert routes(role) == {"/callbacks/callfire", "/healthz", "/readyz"}
        assert {"/v2/webhooks", "/openapi.json"} <= routes(role, admin=True)


def test_the_ingress_routes_only_callbacks_to_the_public_port() -> None:
    """ingress.yaml routes exactly /callbacks/callfire, to the Service on the serve pods' http
    port; no Service the Ingress names reaches the admin port."""
    rules = one("Ingress", "relay")["spec"]["rules"]
    paths = [path for rule in rules for path in rule["http"]["paths"]]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/callbacks/callfire", "Exact")]
    backends = {(p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"]) for p in paths}
    assert backends == {("relay", "http")}
    service = one("Service", "relay")["spec"]
    assert [p["targetPort"] for p in service["ports"]] == ["http"]
    assert [p["targetPort"] for p in one("Service", "relay-admin")["spec"]["ports"]] == ["admin"]


def test_the_network_policy_keeps_the_admin_port_inside_the_cluster() -> None:
    """The relay's pods take the http port from anywhere, the admin port only from pods."""
    policy = one("NetworkPolicy", "relay")["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "relay"}
    by_port = {rule["ports"][0]["port"]: rule.get("from") for rule in policy["ingress"]}
    assert by_port == {"http": None, "admin": [{"namespaceSelector": {}}]}


def test_trusted_proxies_is_set_for_the_ingress_and_not_to_everyone() -> None:
    """The ConfigMap names the ingress's range in RELAY_TRUSTED_PROXIES, never all addresses."""
    proxies = settings_from(config_map()).trusted_proxies
    assert proxies and not proxies.everyone()


@pytest.mark.parametrize("deployment", ["relay-serve", "relay-work"])
def test_grace_period_outlasts_the_drain(deployment: str) -> None:
    """terminationGracePeriodSeconds exceeds preStop plus RELAY_SHUTDOWN_GRACE: no SIGKILL mid-drain."""
    pod = one("Deployment", deployment)["spec"]["template"]["spec"]
    pre_stop = container(deployment).get("lifecycle", {}).get("preStop", {}).get("exec", {})
    sleep = float(pre_stop["command"][1]) if pre_stop else 0.0
    assert pod["terminationGracePeriodSeconds"] > sleep + settings_from(config_map()).shutdown_grace


SECRET_FILES = {
    "relay-serve": {"RELAY_CALLFIRE_SECRETS_FILE", "RELAY_API_CREDENTIALS_FILE", "RELAY_SECRET_KEYS_FILE"},
    "relay-work": {"RELAY_SECRET_KEYS_FILE"},
}


@pytest.mark.parametrize("deployment", SECRET_FILES)
def test_secret_files_are_mounted_where_the_variables_point(deployment: str) -> None:
    """Each RELAY_*_FILE names a key of the Secret, in the directory the Secret is mounted at."""
    spec = container(deployment)
    pod = one("Deployment", deployment)["spec"]["template"]["spec"]
    secret_keys = set(one("Secret", "relay-secrets")["stringData"])
    volume = next(v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "relay-secrets")
    mounted = {item["path"] for item in volume["secret"].get("items", [])} or secret_keys
    mount = next(m["mountPath"] for m in spec["volumeMounts"] if m["name"] == volume["name"])
    files = {e["name"]: e["value"] for e in spec["env"] if e["name"].endswith("_FILE")}
    assert set(files) == SECRET_FILES[deployment]
    for path in files.values():
        assert str(Path(path).parent) == mount and Path(path).name in secret_keys & mounted


def test_the_secret_keys_placeholder_fails_validation() -> None:
    """The Secret ships a placeholder, not a working key every deployment would share: a pod
    given it as RELAY_SECRET_KEYS refuses to start."""
    placeholder = one("Secret", "relay-secrets")["stringData"]["secret-keys"]
    with pytest.raises(ValidationError, match="not a Fernet key"):
        Settings(secret_keys=placeholder)


def test_service_and_autoscaler_target_the_listener() -> None:
    """The Service selects the serve pods on their http port; the HPA scales the serve Deployment."""
    labels = one("Deployment", "relay-serve")["spec"]["template"]["metadata"]["labels"]
    service = one("Service", "relay")["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == "http"
    hpa = one("HorizontalPodAutoscaler", "relay-serve")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "relay-serve"}


# --- docker-compose.yml -----------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_redis_keeps_what_it_acknowledged() -> None:
    """Compose's Redis runs with AOF (appendfsync everysec) and never evicts."""
    command = " ".join(compose()["services"]["redis"]["command"])
    for option in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert option in command


def test_compose_runs_one_listener_and_two_workers_from_one_image() -> None:
    """`serve` once and `work` twice, the same image, a stop grace longer than the drain."""
    services = compose()["services"]
    assert services["serve"]["command"] == ["serve"] and services["work"]["command"] == ["work"]
    assert services["work"]["deploy"]["replicas"] == 2
    assert services["serve"]["image"] == services["work"]["image"]
    for name in ("serve", "work"):
        env = services[name]["environment"]
        assert (
            float(services[name]["stop_grace_period"].rstrip("s"))
            > settings_from({"RELAY_SHUTDOWN_GRACE": env["RELAY_SHUTDOWN_GRACE"]}).shutdown_grace
        )


def test_every_variable_compose_sets_is_a_setting() -> None:
    """A RELAY_* name in docker-compose.yml exists in the settings model."""
    names = {k for s in compose()["services"].values() for k in s.get("environment", {})}
    assert {n for n in names if n.startswith(ENV_PREFIX)} - KNOWN_ENV == set()


def test_prometheus_scrapes_metrics_of_every_relay_service() -> None:
    """deploy/prometheus.yml scrapes /metrics on RELAY_ADMIN_PORT of the serve and work services."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    jobs = {tuple(j["dns_sd_configs"][0]["names"]): j for j in config["scrape_configs"]}
    assert set(jobs) == {("serve",), ("work",)}
    for (service,), job in jobs.items():
        env = compose()["services"][service]["environment"]
        assert job["metrics_path"] == "/metrics"
        assert job["dns_sd_configs"][0]["port"] == int(env["RELAY_ADMIN_PORT"])
    assert "/metrics" in routes("work", admin=True)
