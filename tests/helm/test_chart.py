"""The Helm chart, rendered by the real Helm engine (helm-python-sdk, Helm SDK v4) for every
values file under helm/grove/ci/, validated against the Kubernetes schemas of the oldest and
newest supported versions, and checked for what schemas cannot see."""

import base64
import pathlib
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


def test_every_ci_values_file_exists():
    names = {p.name for p in CI_VALUES}
    for want in ["default", "one-replica", "five-replicas", "observers", "tls", "metrics", "no-persistence"]:
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
    # The ServiceMonitor is a CRD: reported as a warning without a schema, not an error.
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ERROR" not in r.stdout, r.stdout


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_what_schemas_cannot_see(values_file):
    values = load(values_file)
    docs = render(values)
    replicas = values.get("replicaCount", 3)
    observers = values.get("observers", {}).get("count", 0)
    persistence = values.get("persistence", {}).get("enabled", True)

    sets = {s["metadata"]["name"]: s for s in by_kind(docs, "StatefulSet")}
    voters = sets["grove"]
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
                f"{i + 1}=grove-{i}.{headless['metadata']['name']}.{NAMESPACE}.svc.cluster.local:7281"
                for i in range(replicas)
            ]
        else:
            assert "GROVE_PEERS" not in env, "one voter is a standalone node"
        if observers:
            assert env["GROVE_OBSERVERS"].split(",") == [
                f"{replicas + i + 1}=grove-obs-{i}.grove-peers.{NAMESPACE}.svc.cluster.local:7281"
                for i in range(observers)
            ]
        assert "--id-from-hostname" in c["args"]
        # Probes call the gRPC health service on a port the container declares.
        ports = {p["containerPort"] for p in c["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"]["port"] in ports, probe
        assert c["readinessProbe"]["grpc"]["service"] == "", "readiness is the overall status"
        # Every mount has a volume or a claim template.
        volumes = {v["name"] for v in pod["spec"].get("volumes", [])}
        claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
        for m in c["volumeMounts"]:
            assert m["name"] in volumes | claims, m
        assert bool(claims) == persistence
        check_tls(values, pod["spec"], c)
        check_auth(values, c)
        check_peer_secret(values, docs, c)
    assert ("grove-obs" in sets) == (observers > 0)

    pdbs = by_kind(docs, "PodDisruptionBudget")
    assert len(pdbs) == 1
    assert pdbs[0]["spec"]["maxUnavailable"] == 1
    assert pdbs[0]["spec"]["selector"]["matchLabels"].items() <= voters["spec"]["template"]["metadata"]["labels"].items()

    monitors = by_kind(docs, "ServiceMonitor")
    want_monitor = values.get("metrics", {}).get("serviceMonitor", {}).get("enabled", False)
    assert bool(monitors) == want_monitor
    if monitors:
        port = monitors[0]["spec"]["endpoints"][0]["port"]
        client_svc = services["grove"]
        assert port in {p["name"] for p in client_svc["spec"]["ports"]}


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
    ],
    ids=str,
)
def test_bad_values_are_rejected(bad):
    with pytest.raises(helm_python.HelmValuesError):
        render(bad)
    result = helm_python.lint(str(CHART), bad, strict=True, namespace=NAMESPACE)
    assert result["errors"] or any(m["severity"] >= 3 for m in result["messages"]), result
