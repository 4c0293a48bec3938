"""The Helm chart, rendered by the real Helm engine (helm-python-sdk, Helm SDK v4) for every
values file under helm/grove/ci/, validated against the Kubernetes schemas of the oldest and
newest supported versions, and checked for what schemas cannot see."""

import base64
import json
import pathlib
import re
import subprocess
import sys

import helm_python
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "grove"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
NAMESPACE = "coord"
# The chart's kubeVersion floor and the newest schema kubernetes-validate ships.
KUBE_VERSIONS = ["1.25", "1.37"]

# The server's /metrics names the chart's alerts and dashboard use, with their kinds: the
# contract with server/src. A histogram is queried through its _bucket, _sum and _count series.
METRICS = {
    "grove_raft_leader_id": "gauge",  # 0 = no known leader
    "grove_raft_term": "gauge",
    "grove_has_quorum": "gauge",  # 1 if in contact with a leader that has quorum
    "grove_ready": "gauge",  # 1 = serving
    "grove_peer_replication_lag": "gauge",  # {peer}, entries behind, reported by the leader
    "grove_log_fsync_seconds": "histogram",
    "grove_watch_slow_consumer_cancels_total": "counter",
    "grove_limit_refusals_total": "counter",  # {limit}
    "grove_storage_errors_total": "counter",
    "grove_requests_total": "counter",  # {method, code}
    "grove_request_duration_seconds": "histogram",  # {method}
    "grove_write_stage_seconds": "histogram",  # {stage}
    "grove_nodes": "gauge",
    "grove_sessions": "gauge",
    "grove_watches": "gauge",
    "grove_watch_streams": "gauge",
    "grove_client_connections": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
}
WRITE_STAGES = ["queued", "log_commit", "replicate", "follower_append", "raft", "apply"]


def render(values, name="grove"):
    with helm_python.Chart.load(str(CHART)) as chart:
        out = chart.render(values, name=name, namespace=NAMESPACE, revision=1, is_install=True, is_upgrade=False)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def load(path):
    return yaml.safe_load(path.read_text()) or {}


def ci(name):
    return load(CHART / "ci" / f"{name}-values.yaml")


def fullname(values, release="grove"):
    if values.get("fullnameOverride"):
        return values["fullnameOverride"]
    name = values.get("nameOverride") or "grove"
    return release if name in release else f"{release}-{name}"


def test_every_ci_values_file_exists():
    names = {p.name for p in CI_VALUES}
    for want in ["default", "one-replica", "five-replicas", "observers", "tls", "metrics", "no-persistence",
                 "extras", "networkpolicy", "backup", "backup-tls"]:
        assert f"{want}-values.yaml" in names, names


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_lint_is_clean(values_file):
    result = helm_python.lint(str(CHART), load(values_file), strict=True, namespace=NAMESPACE)
    assert result["errors"] == [], result
    # Severity 1 is informational (e.g. "icon is recommended"); warnings and errors fail.
    assert [m for m in result["messages"] if m["severity"] >= 2] == [], result


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_manifests_validate_strictly(values_file, kube, tmp_path):
    out = tmp_path / "rendered.yaml"
    out.write_text(yaml.safe_dump_all(render(load(values_file))))
    r = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", kube, str(out)],
        capture_output=True,
        text=True,
    )
    # The ServiceMonitor and PrometheusRule are CRDs: reported as warnings without a schema,
    # not errors (the PrometheusRule's structure is checked in check_prometheus_rule).
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ERROR" not in r.stdout, r.stdout


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_what_schemas_cannot_see(values_file):
    values = load(values_file)
    docs = render(values)
    replicas = values.get("replicaCount", 3)
    observers = values.get("observers", {}).get("count", 0)
    persistence = values.get("persistence", {}).get("enabled", True)
    existing_claim = persistence and values.get("persistence", {}).get("existingClaim")
    name = fullname(values)

    sets = {s["metadata"]["name"]: s for s in by_kind(docs, "StatefulSet")}
    voters = sets[name]
    assert voters["spec"]["replicas"] == replicas
    assert voters["spec"]["podManagementPolicy"] == "Parallel"
    services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
    headless = services[voters["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True

    for sts in sets.values():
        pod = sts["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
        # Both Services reach every member.
        for svc in services.values():
            assert svc["spec"]["selector"].items() <= labels.items()
        c = pod["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c["env"]}
        # The peer list: one DNS name per voter, behind the headless Service, ids 1..N.
        if replicas > 1 or observers:
            peers = env["GROVE_PEERS"].split(",")
            assert peers == [
                f"{i + 1}={name}-{i}.{headless['metadata']['name']}.{NAMESPACE}.svc.cluster.local:7281"
                for i in range(replicas)
            ]
        else:
            assert "GROVE_PEERS" not in env, "one voter is a standalone node"
        if observers:
            assert env["GROVE_OBSERVERS"].split(",") == [
                # Above every voter id (1..5), so voters scale without colliding.
                f"{5 + i + 1}={name}-obs-{i}.{name}-peers.{NAMESPACE}.svc.cluster.local:7281"
                for i in range(observers)
            ]
        assert "--id-from-hostname" in c["args"]
        # Probes call the gRPC health service on a port the container declares.
        ports = {p["containerPort"] for p in c["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"]["port"] in ports, probe
        assert c["readinessProbe"]["grpc"]["service"] == "", "readiness is the overall status"
        # Every mount, in every container, has a volume or a claim template.
        volumes = {v["name"] for v in pod["spec"].get("volumes", [])}
        claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
        containers = pod["spec"]["containers"] + pod["spec"].get("initContainers", [])
        for m in [m for x in containers for m in x.get("volumeMounts", [])]:
            assert m["name"] in volumes | claims, m
        assert c["volumeMounts"][0] == {"name": "data", "mountPath": "/var/lib/grove"}
        # Voters on persistence.existingClaim mount that claim; observers keep a claim each.
        on_existing = existing_claim and sts is voters
        assert bool(claims) == (persistence and not on_existing)
        if on_existing:
            (data,) = [v for v in pod["spec"]["volumes"] if v["name"] == "data"]
            assert data == {"name": "data", "persistentVolumeClaim": {"claimName": existing_claim}}
        check_tls(values, pod["spec"], c)
        check_auth(values, c)
        check_peer_secret(values, docs, c)
        check_pod_extras(values, docs, pod["spec"])
    assert (f"{name}-obs" in sets) == (observers > 0)

    pdbs = by_kind(docs, "PodDisruptionBudget")
    assert len(pdbs) == 1
    assert pdbs[0]["spec"]["maxUnavailable"] == 1
    assert pdbs[0]["spec"]["selector"]["matchLabels"].items() <= voters["spec"]["template"]["metadata"]["labels"].items()

    monitors = by_kind(docs, "ServiceMonitor")
    want_monitor = values.get("metrics", {}).get("serviceMonitor", {}).get("enabled", False)
    assert bool(monitors) == want_monitor
    if monitors:
        port = monitors[0]["spec"]["endpoints"][0]["port"]
        client_svc = services[name]
        assert port in {p["name"] for p in client_svc["spec"]["ports"]}

    check_network_policy(values, docs)
    check_backup(values, docs)
    check_prometheus_rule(values, docs)
    check_dashboard(values, docs)


def check_pod_extras(values, docs, pod):
    """The pod-level extras land in the pod as given, groved stays the first container."""
    assert pod["containers"][0]["name"] == "groved"
    c = pod["containers"][0]
    assert pod["containers"][1:] == values.get("sidecars", [])
    assert pod.get("initContainers", []) == values.get("initContainers", [])
    assert c.get("envFrom", []) == values.get("extraEnvFrom", [])
    for e in values.get("extraEnv", []):
        assert e in c["env"], e
    for v in values.get("extraVolumes", []):
        assert v in pod["volumes"], v
    assert c["volumeMounts"][len(c["volumeMounts"]) - len(values.get("extraVolumeMounts", [])):] == \
        values.get("extraVolumeMounts", [])
    assert pod.get("topologySpreadConstraints", []) == values.get("topologySpreadConstraints", [])
    assert pod.get("priorityClassName", "") == values.get("priorityClassName", "")
    if values.get("affinity"):
        assert pod["affinity"] == values["affinity"], "affinity replaces the podAntiAffinity preset"
    sa = values.get("serviceAccount", {})
    accounts = [a["metadata"]["name"] for a in by_kind(docs, "ServiceAccount")]
    if sa.get("create", True):
        assert accounts == [sa.get("name") or fullname(values)]
        assert pod["serviceAccountName"] == accounts[0]
    else:
        assert accounts == []
        assert pod["serviceAccountName"] == (sa.get("name") or "default")
    automount = sa.get("automountServiceAccountToken", False)
    assert pod["automountServiceAccountToken"] is automount
    for account in by_kind(docs, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is automount


def check_network_policy(values, docs):
    """Client port open (or only to labelled pods), peer port only from the chart's own pods,
    admin port open."""
    policies = by_kind(docs, "NetworkPolicy")
    np = values.get("networkPolicy", {})
    if not np.get("enabled"):
        assert policies == []
        return
    (policy,) = policies
    name = fullname(values)
    (voters,) = [s for s in by_kind(docs, "StatefulSet") if s["metadata"]["name"] == name]
    members = {k: v for k, v in voters["spec"]["selector"]["matchLabels"].items() if k != "app.kubernetes.io/component"}
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": members}
    for sts in by_kind(docs, "StatefulSet"):
        assert members.items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    assert spec["policyTypes"] == ["Ingress"]
    rules = spec["ingress"]
    extra = np.get("extraIngress", [])
    assert rules[len(rules) - len(extra):] == extra
    by_port = {}
    for rule in rules[: len(rules) - len(extra)]:
        for port in rule["ports"]:
            assert port["protocol"] == "TCP"
            by_port[port["port"]] = rule
    ports = {"client": 7181, "peer": 7281, "admin": 7381, "health": 7481}
    assert by_port[ports["peer"]]["from"] == [{"podSelector": {"matchLabels": members}}]
    assert "from" not in by_port[ports["admin"]]
    client = by_port[ports["client"]]
    if np.get("allowExternal", True):
        assert "from" not in client
    else:
        assert client["from"] == [
            {"podSelector": {"matchLabels": {f"{name}-client": "true"}}},
            {"podSelector": {"matchLabels": members}},
        ]
    tls = values.get("tls", {}).get("client", {}).get("enabled", False)
    assert (ports["health"] in by_port) == tls
    if tls:
        assert "from" not in by_port[ports["health"]], "kubelet's probes reach the health port"


def check_backup(values, docs):
    """The CronJob saves a snapshot through the client Service into the backup claim and
    keeps the newest `retention` files."""
    jobs = by_kind(docs, "CronJob")
    backup = values.get("backup", {})
    if not backup.get("enabled"):
        assert jobs == []
        assert by_kind(docs, "PersistentVolumeClaim") == []
        return
    name = fullname(values)
    (job,) = jobs
    spec = job["spec"]
    assert spec["schedule"] == backup.get("schedule", "0 3 * * *")
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] == backup.get("successfulJobsHistoryLimit", 3)
    assert spec["failedJobsHistoryLimit"] == backup.get("failedJobsHistoryLimit", 3)
    pod = spec["jobTemplate"]["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    assert c["image"] == "grove:0.1.0"
    assert c["command"][:2] == ["/bin/sh", "-c"]
    script = c["command"][2]
    lines = script.splitlines()
    assert lines[0] == "set -eu", "a failed save fails the job"
    (save,) = [line for line in lines if " snapshot save " in line]
    assert save.startswith("grove --server ")
    flags = save.split("grove ", 1)[1].split(" snapshot save ")[0].split()
    assert flags[:2] == ["--server", f"{name}.{NAMESPACE}.svc.cluster.local:7181"]
    linearizable = "-l " if backup.get("linearizable", True) else ""
    assert save.endswith(f" snapshot save {linearizable}/backup/grove-$(date -u +%Y%m%dT%H%M%SZ).snap")
    assert "rm -f /backup/grove-*.partial" in lines
    retention = backup.get("retention", 7)
    assert f"ls -1 /backup/grove-*.snap | sort -r | tail -n +{retention + 1} | while read -r old; do" in lines
    assert c.get("resources", {}) == backup.get("resources", {})
    # TLS: the client Secret's CA (and the job's own certificate with requireClientCert).
    tls = values.get("tls", {}).get("client", {})
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert mounts["backup"] == "/backup"
    assert set(mounts) == set(volumes)
    if tls.get("enabled"):
        want = ["--tls-ca", "/etc/grove/tls/client/ca.crt", "--tls-server-name", f"{name}.{NAMESPACE}.svc"]
        assert flags[2:6] == want, flags
        assert volumes["tls-client"]["secret"]["secretName"] == tls["secretName"]
        cert = backup.get("tls", {}).get("existingSecret")
        assert (flags[6:] == ["--tls-cert", "/etc/grove/tls/backup/tls.crt", "--tls-key", "/etc/grove/tls/backup/tls.key"]) \
            == bool(cert)
        if cert:
            assert volumes["tls-backup"]["secret"]["secretName"] == cert
            assert mounts["tls-backup"] == "/etc/grove/tls/backup"
    else:
        assert flags[2:] == [], flags
    # The claim: the given one, or one the chart creates and keeps.
    claims = by_kind(docs, "PersistentVolumeClaim")
    claim = volumes["backup"]["persistentVolumeClaim"]["claimName"]
    persistence = backup.get("persistence", {})
    if persistence.get("existingClaim"):
        assert claim == persistence["existingClaim"]
        assert claims == []
    else:
        (pvc,) = claims
        assert pvc["metadata"]["name"] == claim == f"{name}-backup"
        assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert pvc["spec"]["resources"]["requests"]["storage"] == persistence.get("size", "8Gi")
        assert pvc["spec"].get("storageClassName", "") == persistence.get("storageClass", "")
    env = {e["name"]: e for e in c.get("env", [])}
    secret = backup.get("auth", {}).get("existingSecret")
    if secret:
        assert env["GROVE_AUTH"]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "auth"}
    else:
        assert "GROVE_AUTH" not in env
    # Never a member: no Service selects it; but it may reach a client port kept to labelled pods.
    labels = pod["metadata"]["labels"]
    for svc in by_kind(docs, "Service"):
        assert not svc["spec"]["selector"].items() <= labels.items(), svc["metadata"]["name"]
    assert labels[f"{name}-client"] == "true"
    assert pod["spec"]["restartPolicy"] in ("Never", "OnFailure")


def metric_names(expr):
    """The metric names a PromQL expression reads: identifiers outside strings, label
    matchers, ranges and label lists that are not functions or keywords."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", e):
        if e[m.end():].lstrip().startswith("("):
            continue
        if m.group(0) in {"by", "without", "on", "ignoring", "bool", "and", "or", "unless", "offset"}:
            continue
        names.add(m.group(0))
    return names


def check_contract(expr):
    """Every series an expression reads is a contract metric (histograms through their series)."""
    used = metric_names(expr)
    assert used, expr
    for series in used:
        base = re.sub(r"_(bucket|sum|count)$", "", series)
        if base != series and METRICS.get(base) == "histogram":
            continue
        assert series in METRICS, f"{series} (in {expr}) is not a metric the server exports"
        assert METRICS[series] != "histogram", f"{series} is a histogram: use its _bucket/_sum/_count"
        if METRICS[series] == "counter":
            assert re.search(rf"\b(rate|increase|irate)\(\s*{series}\b", expr), f"{series} is a counter: {expr}"
    return used


def check_prometheus_rule(values, docs):
    rules = by_kind(docs, "PrometheusRule")
    metrics = values.get("metrics", {})
    want = metrics.get("enabled", True) and metrics.get("prometheusRule", {}).get("enabled", False)
    if not want:
        assert rules == []
        return
    (rule,) = rules
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"].items() >= metrics["prometheusRule"].get("labels", {}).items()
    (group,) = rule["spec"]["groups"]
    extra = metrics["prometheusRule"].get("additionalRules", [])
    assert group["rules"][len(group["rules"]) - len(extra):] == extra
    ours = group["rules"][: len(group["rules"]) - len(extra)]
    alerts = {r["alert"]: r for r in ours}
    assert len(alerts) == len(ours), "alert names are unique"
    assert set(alerts) == {"GroveNoLeader", "GroveQuorumLost", "GroveMemberLagging", "GroveFsyncSlow",
                           "GroveWatchStreamsCancelled", "GroveLimitRefusals", "GroveStorageFailure", "GroveNotReady"}
    for a in ours:
        assert set(a) == {"alert", "expr", "for", "labels", "annotations"}, a
        assert re.fullmatch(r"[0-9]+[smh]", a["for"]), a
        assert a["labels"]["severity"] in ("critical", "warning", "info"), a
        assert a["annotations"]["summary"] and a["annotations"]["description"], a
        assert a["expr"].count("(") == a["expr"].count(")"), a["expr"]
        check_contract(a["expr"])
        # Only this release's series, as its ServiceMonitor labels them.
        for matchers in re.findall(r"\{([^}]*)\}", a["expr"]):
            assert matchers == f'namespace="{NAMESPACE}", job="{fullname(values)}"', a["expr"]
    assert alerts["GroveStorageFailure"]["labels"]["severity"] == "critical"
    assert alerts["GroveNoLeader"]["expr"] == (
        f'max by (namespace, pod) (grove_raft_leader_id{{namespace="{NAMESPACE}", job="{fullname(values)}"}}) == 0')
    assert alerts["GroveNoLeader"]["for"] == "1m"
    assert alerts["GroveMemberLagging"]["expr"].endswith(") > 1000") and alerts["GroveMemberLagging"]["for"] == "5m"
    assert alerts["GroveFsyncSlow"]["expr"].startswith("histogram_quantile(0.99, ")
    assert "[5m]" in alerts["GroveFsyncSlow"]["expr"] and alerts["GroveFsyncSlow"]["expr"].endswith(" > 0.1")
    assert "[10m]" in alerts["GroveWatchStreamsCancelled"]["expr"]
    assert alerts["GroveLimitRefusals"]["expr"].endswith(" > 1") and alerts["GroveLimitRefusals"]["for"] == "10m"
    assert "[5m]" in alerts["GroveStorageFailure"]["expr"]
    assert alerts["GroveNotReady"]["expr"].endswith(" == 0") and alerts["GroveNotReady"]["for"] == "5m"


def check_dashboard(values, docs):
    maps = [m for m in by_kind(docs, "ConfigMap") if m["metadata"]["name"].endswith("-dashboard")]
    metrics = values.get("metrics", {})
    if not (metrics.get("enabled", True) and metrics.get("dashboard", {}).get("enabled", False)):
        assert maps == []
        return
    (cm,) = maps
    labels = metrics["dashboard"].get("labels", {"grafana_dashboard": "1"})
    assert cm["metadata"]["labels"].items() >= labels.items()
    assert cm["metadata"].get("annotations", {}) == metrics["dashboard"].get("annotations", {})
    assert set(cm["data"]) == {"grove.json"}
    assert json.loads(cm["data"]["grove.json"]) == json.loads((CHART / "dashboards" / "grove.json").read_text())


def check_tls(values, pod, c):
    """TLS flags point into mounted Secrets; probes use a port that speaks plaintext gRPC."""
    tls = values.get("tls", {})
    client = tls.get("client", {})
    peer = tls.get("peer", {})
    args = c["args"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    for arg in args:
        if arg.startswith(("--tls-", "--peer-tls-")) and "=" in arg:
            path = arg.split("=", 1)[1]
            mount = next((m for p, m in mounts.items() if path.startswith(p + "/")), None)
            assert mount is not None, f"{arg} is not under a mount"
            assert mount["name"] in secrets and mount.get("readOnly"), mount
    probe_ports = {c[p]["grpc"]["port"] for p in ("readinessProbe", "livenessProbe")}
    if client.get("enabled"):
        assert "--tls-cert=/etc/grove/tls/client/tls.crt" in args
        assert "--health-listen=0.0.0.0:7481" in args
        assert probe_ports == {7481}, "kubelet's gRPC probes cannot speak TLS"
        assert secrets["tls-client"] == client["secretName"]
        verify = client.get("verifyClientCerts") or client.get("requireClientCert")
        assert ("--tls-client-ca=/etc/grove/tls/client/ca.crt" in args) == bool(verify)
        assert ("--tls-require-client-cert" in args) == bool(client.get("requireClientCert"))
    else:
        assert not any(a.startswith("--tls-") or a.startswith("--health-listen") for a in args), args
        assert probe_ports == {7181}
    if peer.get("enabled"):
        for flag in ("cert=/etc/grove/tls/peer/tls.crt", "key=/etc/grove/tls/peer/tls.key", "ca=/etc/grove/tls/peer/ca.crt"):
            assert f"--peer-tls-{flag}" in args
        assert secrets["tls-peer"] == peer["secretName"]
    else:
        assert not any(a.startswith("--peer-tls-") for a in args), args


def check_auth(values, c):
    """The super digest comes from the named Secret, never from a plain value."""
    digest = values.get("auth", {}).get("superDigest", {})
    env = {e["name"]: e for e in c["env"]}
    if digest.get("secretName"):
        ref = env["GROVE_SUPER_DIGEST"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": digest["secretName"], "key": digest.get("key", "superDigest")}, ref
        assert "value" not in env["GROVE_SUPER_DIGEST"]
    else:
        assert "GROVE_SUPER_DIGEST" not in env


def check_peer_secret(values, docs, c):
    """Without peer TLS, every pod gets the peer secret from a Secret: the named one, or one
    the chart renders with a random value; with peer TLS, none."""
    env = {e["name"]: e for e in c["env"]}
    if values.get("tls", {}).get("peer", {}).get("enabled"):
        assert "GROVE_PEER_SECRET" not in env
        return
    ref = env["GROVE_PEER_SECRET"]["valueFrom"]["secretKeyRef"]
    given = values.get("auth", {}).get("peerSecret", {}).get("secretName")
    if given:
        assert ref["name"] == given
        assert not [s for s in by_kind(docs, "Secret") if s["metadata"]["name"].endswith("-peer-secret")]
    else:
        (secret,) = [s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == ref["name"]]
        value = base64.b64decode(secret["data"][ref["key"]]).decode()
        assert len(value) >= 16 and value.isalnum(), value
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


@pytest.mark.parametrize(
    "bad",
    [
        {"replicaCount": 2},
        {"replicaCount": 4},
        {"replicaCount": 0},
        {"replicaCount": "three"},
        {"ports": {"client": 0, "peer": 7281, "admin": 7381, "health": 7481}},
        {"tls": {"client": {"enabled": True}}},
        {"tls": {"peer": {"enabled": True, "secretName": ""}}},
        {"tls": {"client": {"enabled": True, "secretName": "s", "requireClientCert": "yes"}}},
        {"auth": {"superDigest": {"secretName": "s", "key": ""}}},
        {"auth": {"superDigest": {"secretName": "s", "key": "k", "value": "root:x"}}},
        {"persistence": {"enabled": True, "size": "lots"}},
        {"observers": {"count": -1}},
        {"podAntiAffinity": "sometimes"},
        {"metrics": {"serviceMonitor": {"enabled": True, "interval": "often"}}},
        {"nope": True},
        {"persistence": {"enabled": True, "existingClaim": 7}},
        {"fullnameOverride": "Grove"},
        {"nameOverride": "a" * 51},
        {"affinity": []},
        {"topologySpreadConstraints": [{"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]},
        {"priorityClassName": 5},
        {"extraVolumes": [{"emptyDir": {}}]},
        {"extraVolumeMounts": [{"name": "x"}]},
        {"initContainers": [{"name": "x"}]},
        {"sidecars": [{"image": "busybox"}]},
        {"extraEnvFrom": [{"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}]},
        {"extraEnvFrom": [{"prefix": "GROVE_"}]},
        {"extraEnvFrom": [{"configMapRef": {}}]},
        {"serviceAccount": {"create": True, "automountServiceAccountToken": False, "rbac": True}},
        {"serviceAccount": {"create": "yes", "automountServiceAccountToken": False}},
        {"networkPolicy": {"enabled": True, "allowExternal": True, "egress": []}},
        {"networkPolicy": {"enabled": True, "allowExternal": "no"}},
        {"metrics": {"prometheusRule": {"enabled": True, "additionalRules": [{"alert": "X"}]}}},
        {"metrics": {"prometheusRule": {"enabled": True, "additionalRules": [{"expr": "up"}]}}},
        {"metrics": {"prometheusRule": {"enabled": True, "namespace": "monitoring"}}},
        {"metrics": {"dashboard": {"enabled": True, "labels": {"grafana_dashboard": 1}}}},
        {"backup": {"enabled": True, "retention": 0}},
        {"backup": {"enabled": True, "schedule": ""}},
        {"backup": {"enabled": True, "persistence": {"size": "big"}}},
        {"backup": {"enabled": True, "auth": {"secretName": "s"}}},
        {"backup": {"enabled": True, "keep": 3}},
    ],
    ids=str,
)
def test_bad_values_are_rejected(bad):
    with pytest.raises(helm_python.HelmValuesError):
        render(bad)
    result = helm_python.lint(str(CHART), bad, strict=True, namespace=NAMESPACE)
    assert result["errors"] or any(m["severity"] >= 3 for m in result["messages"]), result


def render_error(values):
    with pytest.raises(helm_python.HelmRenderError) as err:
        render(values)
    return str(err.value)


@pytest.mark.parametrize("replicas", [3, 5])
def test_existing_claim_needs_one_voter(replicas):
    message = render_error({"replicaCount": replicas, "persistence": {"enabled": True, "existingClaim": "mine"}})
    assert f'persistence.existingClaim ("mine") needs replicaCount 1: with {replicas} voters' in message, message
    # Without persistence the claim is not used, so nothing to refuse.
    render({"replicaCount": replicas, "persistence": {"enabled": False, "existingClaim": "mine"}})


def test_backup_with_required_client_certs_needs_a_certificate():
    values = ci("backup-tls")
    del values["backup"]["tls"]
    values["membership"] = {"hooks": False}
    message = render_error(values)
    assert "backup.tls.existingSecret is required with tls.client.requireClientCert" in message, message
    # verifyClientCerts alone: the job may connect without one.
    values["tls"]["client"]["requireClientCert"] = False
    values["tls"]["client"]["verifyClientCerts"] = True
    check_backup(values, render(values))


def test_membership_jobs_follow_replica_count_and_connect_like_the_backup_job():
    docs = render({"replicaCount": 5})
    jobs = {j["metadata"]["name"]: j for j in by_kind(docs, "Job")}
    # Growing needs no job (new pods ask to join); shrinking removes voters first.
    assert set(jobs) == {"grove-shrink"}
    assert jobs["grove-shrink"]["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade,pre-rollback"
    shrink = jobs["grove-shrink"]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "-v n=5 -v o=5" in shrink and "member remove" in shrink, shrink
    assert f"grove --server grove.{NAMESPACE}.svc.cluster.local:7181 members" in shrink, shrink
    sts = next(s for s in by_kind(docs, "StatefulSet") if s["metadata"]["name"] == "grove")
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenScaled": "Delete", "whenDeleted": "Retain"}
    assert "--auto-join" in sts["spec"]["template"]["spec"]["containers"][0]["args"]
    # Off: no jobs.
    assert not list(by_kind(render({"membership": {"hooks": False}}), "Job"))
    # Required client certificates: the jobs need one (their own, or the backup job's).
    values = ci("tls")
    del values["membership"]
    assert "membership.tls.existingSecret (or backup.tls.existingSecret) is required" in render_error(values)
    values["backup"] = {"enabled": False, "tls": {"existingSecret": "backup-cert"}}
    shrink = next(j for j in by_kind(render(values), "Job") if j["metadata"]["name"] == "grove-shrink")
    pod = shrink["spec"]["template"]["spec"]
    assert "--tls-cert /etc/grove/tls/jobs/tls.crt" in pod["containers"][0]["command"][2]
    assert {"name": "tls-jobs", "secret": {"secretName": "backup-cert"}} in pod["volumes"]
    # Observer ids stay above the voters'.
    assert "must be at least replicaCount" in render_error({"replicaCount": 5, "observers": {"count": 1, "idOffset": 3}})


def everything():
    """Every object the chart can render."""
    values = ci("extras")
    for name in ("metrics", "backup"):
        values.update(ci(name))
    return values


@pytest.mark.parametrize("override", ["coord", "a-fifty-character-name-the-most-the-schema-allows0"])
def test_fullname_override_renames_every_object(override):
    values = everything()
    values["fullnameOverride"] = override
    del values["serviceAccount"]["name"]  # an explicit name is kept as given
    docs = render(values, name="rel")
    want = override
    kinds = {d["kind"] for d in docs}
    assert {"StatefulSet", "Service", "PodDisruptionBudget", "Secret", "ServiceAccount", "NetworkPolicy",
            "ServiceMonitor", "PrometheusRule", "ConfigMap", "CronJob"} <= kinds, kinds
    for d in docs:
        assert d["metadata"]["name"].startswith(want), (d["kind"], d["metadata"]["name"])
        assert "rel-grove" not in json.dumps(d), d["kind"]
    sts = {s["metadata"]["name"]: s for s in by_kind(docs, "StatefulSet")}
    assert set(sts) == {want, f"{want}-obs"}
    assert sts[want]["spec"]["serviceName"] == f"{want}-peers"
    env = {e["name"]: e.get("value") for e in sts[want]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert f"{want}-obs-0.{want}-peers.{NAMESPACE}.svc.cluster.local:7281" in env["GROVE_OBSERVERS"]


def test_name_override():
    docs = render({"nameOverride": "coord"}, name="prod")
    sts = by_kind(docs, "StatefulSet")[0]
    assert sts["metadata"]["name"] == "prod-coord"
    assert sts["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "coord"
    # A release whose name contains it is used as is.
    docs = render({"nameOverride": "coord"}, name="coord-prod")
    assert by_kind(docs, "StatefulSet")[0]["metadata"]["name"] == "coord-prod"
    # The default name is unchanged by the new values.
    assert by_kind(render({}, name="prod"), "StatefulSet")[0]["metadata"]["name"] == "prod-grove"


@pytest.mark.parametrize(
    "sa, want_name, want_object",
    [
        ({}, "grove", True),
        ({"create": True, "name": "coordinator"}, "coordinator", True),
        ({"create": False, "name": "shared"}, "shared", False),
        ({"create": False}, "default", False),
    ],
    ids=str,
)
def test_service_account_on_every_pod(sa, want_name, want_object):
    values = {"observers": {"count": 1}, "backup": {"enabled": True}}
    if sa:
        values["serviceAccount"] = {"automountServiceAccountToken": False, **sa}
    docs = render(values)
    accounts = by_kind(docs, "ServiceAccount")
    assert [a["metadata"]["name"] for a in accounts] == ([want_name] if want_object else [])
    pods = [s["spec"]["template"]["spec"] for s in by_kind(docs, "StatefulSet")]
    pods += [j["spec"]["jobTemplate"]["spec"]["template"]["spec"] for j in by_kind(docs, "CronJob")]
    assert len(pods) == 3
    for pod in pods:
        assert pod["serviceAccountName"] == want_name
        assert pod["automountServiceAccountToken"] is False


def test_network_policy_peer_port_admits_only_the_chart_pods():
    docs = render(ci("networkpolicy"))
    (policy,) = by_kind(docs, "NetworkPolicy")
    members = {"app.kubernetes.io/name": "grove", "app.kubernetes.io/instance": "grove"}
    peer_rules = [r for r in policy["spec"]["ingress"] if {"port": 7281, "protocol": "TCP"} in r.get("ports", [])]
    assert peer_rules == [{"ports": [{"port": 7281, "protocol": "TCP"}], "from": [{"podSelector": {"matchLabels": members}}]}]
    # No other rule opens the peer port (a rule without ports opens all of them).
    for rule in policy["spec"]["ingress"]:
        assert "ports" in rule
    # The client port: only labelled pods (and the members) once allowExternal is off.
    client = next(r for r in policy["spec"]["ingress"] if {"port": 7181, "protocol": "TCP"} in r["ports"])
    assert {"podSelector": {"matchLabels": {"grove-client": "true"}}} in client["from"]
    open_client = next(r for r in by_kind(render({"networkPolicy": {"enabled": True, "allowExternal": True}}), "NetworkPolicy")[0]["spec"]["ingress"]
                       if {"port": 7181, "protocol": "TCP"} in r["ports"])
    assert "from" not in open_client
    # Voters and observers alike.
    docs = render({**ci("networkpolicy"), "observers": {"count": 1}})
    for sts in by_kind(docs, "StatefulSet"):
        assert members.items() <= sts["spec"]["template"]["metadata"]["labels"].items()


def test_backup_cronjob():
    values = ci("backup")
    docs = render(values)
    (job,) = by_kind(docs, "CronJob")
    assert job["spec"]["schedule"] == "30 2 * * *"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    script = pod["containers"][0]["command"][2]
    assert "grove --server grove.coord.svc.cluster.local:7181 snapshot save -l /backup/grove-$(date -u +%Y%m%dT%H%M%SZ).snap" \
        in script.splitlines()
    assert "tail -n +15 " in script, "the newest 14 are kept"
    assert pod["volumes"][0] == {"name": "backup", "persistentVolumeClaim": {"claimName": "grove-backup"}}
    (pvc,) = by_kind(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["storageClassName"] == "standard"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    # Defaults.
    (job,) = by_kind(render({"backup": {"enabled": True}}), "CronJob")
    assert job["spec"]["schedule"] == "0 3 * * *"
    assert "tail -n +8 " in job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert not by_kind(render({}), "CronJob")


def test_backup_script_runs_and_prunes(tmp_path):
    """The rendered script itself, with a stand-in `grove` and /backup under tmp_path: it saves
    one file per run, keeps the newest `retention`, fails with a failed save and prunes nothing
    then, and clears the partial files of a job cut short."""
    values = {"backup": {"enabled": True, "retention": 3}}
    (job,) = by_kind(render(values), "CronJob")
    script = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    backup = tmp_path / "backup"
    backup.mkdir()
    script = script.replace("/backup", str(backup))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    grove = bin_dir / "grove"
    # A stand-in for `grove snapshot save FILE`: records its arguments, writes FILE.partial
    # and renames it (or, with FAIL set, removes it and fails), as the CLI does.
    grove.write_text('#!/bin/sh\necho "$@" > "$ARGS"\nfor last; do :; done\npartial="$last.partial"\n'
                     'echo snap > "$partial"\nif [ -n "${FAIL:-}" ]; then rm -f "$partial"; exit 3; fi\n'
                     'mv "$partial" "$last"\n')
    grove.chmod(0o755)
    for old in ["20240101T000000Z", "20240102T000000Z", "20240103T000000Z", "20240104T000000Z"]:
        (backup / f"grove-{old}.snap").write_text("old")
    (backup / "grove-20240105T000000Z.snap.partial").write_text("cut short")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "ARGS": str(tmp_path / "args")}
    r = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    args = (tmp_path / "args").read_text().split()
    assert args[:4] == ["--server", "grove.coord.svc.cluster.local:7181", "snapshot", "save"]
    kept = sorted(p.name for p in backup.iterdir())
    assert len(kept) == 3 and kept[:2] == ["grove-20240103T000000Z.snap", "grove-20240104T000000Z.snap"], kept
    assert re.fullmatch(r"grove-\d{8}T\d{6}Z\.snap", kept[2]) and kept[2] > kept[1], kept
    assert args[4:] == ["-l", str(backup / kept[2])]
    # A failed save fails the job and prunes nothing.
    env["FAIL"] = "1"
    r = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert sorted(p.name for p in backup.iterdir()) == kept


def test_prometheus_rule_alerts():
    values = ci("metrics")
    docs = render(values)
    check_prometheus_rule(values, docs)
    (rule,) = by_kind(docs, "PrometheusRule")
    used = set()
    for r in rule["spec"]["groups"][0]["rules"]:
        if r["alert"].startswith("Grove") and r not in values["metrics"]["prometheusRule"]["additionalRules"]:
            used |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in check_contract(r["expr"])}
    assert used == {"grove_raft_leader_id", "grove_has_quorum", "grove_peer_replication_lag", "grove_log_fsync_seconds",
                    "grove_watch_slow_consumer_cancels_total", "grove_limit_refusals_total",
                    "grove_storage_errors_total", "grove_ready"}
    # No Prometheus Operator objects unless metrics are on.
    off = {"metrics": {"enabled": False, "prometheusRule": {"enabled": True}, "dashboard": {"enabled": True}}}
    docs = render(off)
    assert not by_kind(docs, "PrometheusRule")
    assert not [m for m in by_kind(docs, "ConfigMap") if m["metadata"]["name"].endswith("-dashboard")]


def test_metric_names_parser():
    assert metric_names('histogram_quantile(0.99, sum by (pod, le) (rate(a_bucket{job="x", pod=~"$pod"}[5m]))) > 0.1') == {"a_bucket"}
    assert metric_names("sum(rate(a[$__rate_interval])) / sum(rate(b[1m])) and on(pod) c offset 5m") == {"a", "b", "c"}
    assert metric_names('max by (namespace) (up{a="b{c}"}) == 0') == {"up"}


def test_dashboard():
    dashboard = json.loads((CHART / "dashboards" / "grove.json").read_text())
    assert dashboard["uid"] and dashboard["title"] == "Grove"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    used = set()
    for p in panels:
        assert {"h", "w", "x", "y"} <= p["gridPos"].keys() and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"]
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
            used |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in check_contract(t["expr"])}
            # Every series is scoped to the chosen release and pods.
            for matchers in re.findall(r"\{([^}]*)\}", t["expr"]):
                assert matchers == 'namespace="$namespace", job="$job", pod=~"$pod"', t["expr"]
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            check_contract(re.sub(r"^label_values\((.*), \w+\)$", r"\1", v["query"]["query"]))
    # The panels the issue asks for: every contract metric but the alert-only ones.
    assert used == set(METRICS) - {"grove_watch_slow_consumer_cancels_total", "grove_limit_refusals_total",
                                   "grove_storage_errors_total"}, used
    titles = {p["title"] for p in panels}
    for want in ["Requests by method and code", "Request latency (p50, p99)", "Write stages (p99)", "Log fsync (p99)",
                 "Replication lag per peer (entries)", "Client connections"]:
        assert want in titles, titles
    # Shipped in a ConfigMap with the sidecar's label by default.
    docs = render({"metrics": {"dashboard": {"enabled": True}}})
    (cm,) = [m for m in by_kind(docs, "ConfigMap") if m["metadata"]["name"] == "grove-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["grove.json"]) == dashboard
