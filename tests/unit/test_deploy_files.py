"""The shipped deployment files are accepted by the real tools (installed by scripts/bootstrap)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run scripts/bootstrap")
    return path


def test_docker_compose_accepts_the_compose_file() -> None:
    result = subprocess.run(
        [tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_compose_workers_can_be_scaled() -> None:
    # --scale needs a service without a fixed container name or host port
    result = subprocess.run(
        [tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    worker = result.stdout.split("\n  worker:\n", 1)[1].split("\n  ", 1)[0]
    assert "container_name" not in worker


def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(ROOT / "deploy" / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    rules = ROOT / "deploy" / "prometheus" / "rules" / "interceptor.rules.yml"
    tests = ROOT / "deploy" / "prometheus" / "tests" / "interceptor.test.yml"
    for args in (["check", "rules", str(rules)], ["test", "rules", str(tests)]):
        result = subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_runbook_line_in_the_readme() -> None:
    import yaml

    groups = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules" / "interceptor.rules.yml").read_text())["groups"]
    alerts = [r["alert"] for g in groups for r in g["rules"] if "alert" in r]
    readme = (ROOT / "README.md").read_text().split("## Watching it", 1)[1]
    assert alerts and all(f"`{a}`" in readme for a in alerts)


def test_the_dashboard_is_provisioned_as_home_and_uses_the_provisioned_datasource() -> None:
    import json

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "interceptor.json").read_text())
    datasource = (ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert uids == {"prometheus"} and "uid: prometheus" in datasource
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: /var/lib/grafana/dashboards/interceptor.json" in compose


def test_every_dashboard_panel_is_explained_in_the_readme() -> None:
    import json

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "interceptor.json").read_text())
    readme = (ROOT / "README.md").read_text().split("## Watching it", 1)[1]
    titles = [p["title"] for p in dashboard["panels"] if p["type"] != "row"]
    assert [t for t in titles if f"| {t} |" not in readme] == []


def test_kubernetes_workers_keep_their_checkpoint_on_a_persistent_volume() -> None:
    import yaml

    docs = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "worker.yaml").read_text())}
    workers = docs["StatefulSet"]["spec"]
    container = workers["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = {c["metadata"]["name"] for c in workers["volumeClaimTemplates"]}
    data_volume = next(name for name, path in mounts.items() if path == env["INTERCEPTOR_DATA_DIR"])
    assert data_volume in claims  # not an emptyDir: a restarted worker finds its checkpoint
    assert env["NUMBA_NUM_THREADS"] == "1"


def test_kubernetes_and_compose_probe_the_worker_s_own_endpoints() -> None:
    import yaml

    docs = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "worker.yaml").read_text())}
    container = docs["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    metrics_port = int(next(e["value"] for e in container["env"] if e["name"] == "INTERCEPTOR_METRICS_PORT"))
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {kind: get["path"] for kind, get in probes.items()} == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",  # a rolling restart waits until the new worker decides
    }
    assert {ports[get["port"]] for get in probes.values()} == {metrics_port}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]
    assert f"127.0.0.1:{compose['environment']['INTERCEPTOR_METRICS_PORT']}/readyz" in " ".join(
        compose["healthcheck"]["test"]
    )
