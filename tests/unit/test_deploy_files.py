"""The shipped deployment files are accepted by the real tools (installed by scripts/bootstrap)."""

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "interceptor.rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "interceptor.json"
RUNBOOK = "docs/operations.md"  # the alerts' runbook_url: this path and the alert's own heading


def alerts() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens,
    a repeated heading numbered (`#alerts`, `#alerts-1`)."""
    anchors: set[str] = set()
    seen: Counter[str] = Counter()
    fenced = False
    for line in markdown.splitlines():
        fenced ^= line.startswith("```")
        heading = re.match(r"#{1,6} +(.+?) *#*$", line)
        if heading and not fenced:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
            seen[slug] += 1
    return anchors


def worker_manifests() -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "worker.yaml").read_text())}


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """A label selector that names labels (an empty one selects every pod of the namespace) and matches these."""
    assert set(selector) == {"matchLabels"}, selector
    return bool(selector["matchLabels"]) and selector["matchLabels"].items() <= labels.items()


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


def test_github_anchors_are_made_as_github_makes_them() -> None:
    markdown = "# Operating it\n## Alerts and what to do\n```\n# not a heading\n```\n### `InterceptorX`\n## Alerts"
    assert github_anchors(markdown) == {"operating-it", "alerts-and-what-to-do", "interceptorx", "alerts"}
    assert github_anchors("## A\n## A\n") == {"a", "a-1"}


def test_every_alert_s_runbook_url_names_its_own_heading_in_the_runbook() -> None:
    # an alert added without a runbook entry fails here: no runbook_url, or no heading for it in docs/operations.md
    anchors = github_anchors((ROOT / RUNBOOK).read_text())
    urls = {a["alert"]: a.get("annotations", {}).get("runbook_url") for a in alerts()}
    assert urls and {a: u for a, u in urls.items() if u != f"{RUNBOOK}#{a.lower()}"} == {}
    assert [a for a in urls if a.lower() not in anchors] == []


def test_every_alert_is_listed_in_the_readme_with_a_link_to_its_runbook_entry() -> None:
    readme = (ROOT / "README.md").read_text().split("## Watching it", 1)[1]
    rows = [f"| [`{a['alert']}`]({a['annotations']['runbook_url']}) |" for a in alerts()]
    assert rows and [r for r in rows if r not in readme] == []
    anchors = github_anchors((ROOT / RUNBOOK).read_text())
    links = re.findall(re.escape(RUNBOOK) + r"#([\w-]+)", readme)
    assert links and [a for a in links if a not in anchors] == []


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


def panel_queries() -> list[tuple[dict, str]]:
    return [(p, t["expr"]) for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", [])]


def test_dashboard_counts_are_whole_numbers() -> None:
    # increase() extrapolates to the window's edges, so 7 holds read 7.3: a count is rounded and shown as such
    # (amounts are money and keep their decimals)
    counts = [
        (p, e)
        for p, e in panel_queries()
        if any(not c.endswith("_amount_total") for c in re.findall(r"increase\((\w+)", e))
    ]
    assert counts
    assert [
        e for p, e in counts if not e.startswith("round(") or p["fieldConfig"]["defaults"].get("decimals") != 0
    ] == []


# an idle worker's series after ten minutes of traffic: its counters and histograms stop growing
_IDLE_SERIES = {
    'interceptor_decisions_total{action="allow",channel="mobile"}': 60,
    'interceptor_decisions_total{action="hold",channel="mobile"}': 6,
    'interceptor_decisions_total{action="block",channel="mobile"}': 1,
    'interceptor_intercepted_transactions_total{action="hold",currency="CNY"}': 6,
    'interceptor_intercepted_amount_total{action="hold",currency="CNY"}': 600,
    'interceptor_rule_intercepted_amount_total{rule="r1",currency="CNY"}': 600,
    'interceptor_typology_intercepted_amount_total{tag="mule",currency="CNY"}': 600,
    'interceptor_rule_hits_total{rule="r1",mode="active"}': 6,
    'interceptor_dead_letters_total{topic="transactions",reason="invalid_json"}': 1,
    "interceptor_holds_opened_total": 6,
    'interceptor_hold_outcomes_total{action="release",cause="expired"}': 3,
    'interceptor_hold_outcomes_total{action="release",cause="confirmed"}': 3,
    'interceptor_hold_outcome_amount_total{action="block",currency="CNY"}': 100,
    'interceptor_rule_feedback_total{rule="r1",verdict="fraud"}': 1,
    'interceptor_verifications_total{result="applied"}': 6,
    **{
        f'interceptor_{h}_bucket{{le="{le}"}}': 60
        for h in ("decision_latency_seconds", "batch_processing_seconds", "kernel_seconds", "checkpoint_pause_seconds")
        for le in ("0.01", "+Inf")
    },
}
_IDLE_GAUGES = [
    "up",
    'interceptor_ruleset_reloads_total{result="success"}',
    'interceptor_ruleset_info{version="v1",rules="3"}',
    "interceptor_holds_open",
    'interceptor_consumer_lag{partition="0"}',
    "interceptor_state_feed_lag",
]


def test_no_dashboard_or_recording_rule_query_shows_nan_once_traffic_stops(tmp_path: Path) -> None:
    # a ratio or a quantile of nothing is NaN in PromQL: the queries give no value instead. NaN is the only
    # value unequal to itself, so `(q) != (q)` keeps exactly the NaN samples of q
    queries = [e for _, e in panel_queries()]
    queries += [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "record" in r]

    def labelled(series: str) -> str:  # a series of worker w1 in the scrape job interceptor
        name, _, labels = series.rstrip("}").partition("{")
        return f'{name}{{{labels + "," if labels else ""}job="interceptor",instance="w1"}}'

    def group(interval: str, quiet: int, eval_time: str) -> dict:
        # ten intervals of traffic, then `quiet` intervals without
        series = [
            {"series": labelled(s), "values": f"0+{step}x10 {10 * step}x{quiet}"} for s, step in _IDLE_SERIES.items()
        ]
        series += [{"series": labelled(s), "values": f"1x{10 + quiet}"} for s in _IDLE_GAUGES]
        probes = [{"expr": f"({q}) != ({q})", "eval_time": eval_time, "exp_samples": []} for q in queries]
        return {"interval": interval, "input_series": series, "promql_expr_test": probes}

    tests = tmp_path / "idle.test.yml"
    tests.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(RULES)],
                "evaluation_interval": "5m",
                # windows of 5 minutes and an hour, then the 7 days of the rule precision
                "tests": [group("1m", 80, "85m"), group("1h", 190, "195h")],
            }
        )
    )
    result = subprocess.run(
        [tool("promtool"), "test", "rules", str(tests)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_disruption_budget_and_spread_select_the_worker_pods() -> None:
    docs = worker_manifests()
    pod = docs["StatefulSet"]["spec"]["template"]
    labels = pod["metadata"]["labels"]
    budget = docs["PodDisruptionBudget"]
    assert budget["apiVersion"] == "policy/v1" and budget["spec"]["maxUnavailable"] == 1
    assert selects(budget["spec"]["selector"], labels)
    spread = pod["spec"]["topologySpreadConstraints"]
    assert [(c["topologyKey"], c["whenUnsatisfiable"], c["maxSkew"]) for c in spread] == [
        ("kubernetes.io/hostname", "ScheduleAnyway", 1)
    ]
    assert selects(spread[0]["labelSelector"], labels)


def test_kubernetes_workers_are_scraped_once_through_the_service_monitor_as_job_interceptor() -> None:
    # pod annotations as well would have a Prometheus that honours them scrape every worker twice, under another
    # job, and double every sum on the dashboard
    docs = worker_manifests()
    pod = docs["StatefulSet"]["spec"]["template"]
    service, monitor = docs["Service"], docs["ServiceMonitor"]["spec"]
    assert [a for a in pod["metadata"].get("annotations", {}) if a.startswith("prometheus.io/")] == []
    assert selects(monitor["selector"], service["metadata"]["labels"])
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["metadata"]["labels"][monitor["jobLabel"]] == "interceptor"
    container_ports = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
    assert {e["port"] for e in monitor["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]} & container_ports


def test_compose_prometheus_sends_its_alerts_to_the_compose_alertmanager() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = [t for a in prometheus["alerting"]["alertmanagers"] for c in a["static_configs"] for t in c["targets"]]
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert targets == ["alertmanager:9093"] and "9093:9093" in services["alertmanager"]["ports"]
    # its configuration is written at start (the compose file mounts no file for it): a route to a receiver
    config = yaml.safe_load(re.search(r"echo '(.+?)' >", " ".join(services["alertmanager"]["command"])).group(1))
    assert config["route"]["receiver"] in {r["name"] for r in config["receivers"]}
