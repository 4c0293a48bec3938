"""The chart's StatefulSet, run for real: each pod becomes a network namespace of its own
with the pod's DNS names in its hosts file (as cluster DNS would give them), its data volume
bind-mounted at the path the chart mounts it, and the container's args and env exactly as
rendered (with the kubelet's $(VAR) expansion). The three groved processes must form a
working ensemble. Needs root (network namespaces); traffic stays in the namespaces this test
creates and the bridge between them."""

import base64
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from test_chart import NAMESPACE, ROOT, by_kind, render

GROVED = ROOT / "target" / "debug" / "groved"
GROVE = ROOT / "target" / "debug" / "grove"


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


class Pods:
    """Network namespaces joined by a bridge, one per pod."""

    def __init__(self, names, hosts_of, aliases=None):
        tag = os.getpid() % 100000
        self.subnet = f"10.231.{tag % 250}"
        self.bridge = f"grvbr{tag}"
        self.names = names
        self.ns = [f"grv{tag}-{i}" for i in range(len(names))]
        self.procs = {}
        self.etc = []
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "link", "set", self.bridge, "up")
        # `aliases`: more names for a pod's address (a Service that picks it).
        hosts = "127.0.0.1 localhost\n" + "".join(
            f"{self.subnet}.{i + 1} {hosts_of(n)} {n} {' '.join((aliases or {}).get(i, []))}\n"
            for i, n in enumerate(names)
        )
        for i, ns in enumerate(self.ns):
            sh("ip", "netns", "add", ns)
            host_end, pod_end = f"grv{tag}h{i}", f"grv{tag}p{i}"
            sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", pod_end)
            sh("ip", "link", "set", host_end, "master", self.bridge, "up")
            sh("ip", "link", "set", pod_end, "netns", ns)
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.subnet}.{i + 1}/24", "dev", pod_end)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", pod_end, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            # `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts.
            etc = pathlib.Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts)
            self.etc.append(etc)

    def run(self, i, argv, env, volume, mount_path):
        # A private mount namespace puts the pod's volume at the chart's mount path.
        script = 'mount --bind "$0" "$1" && shift && exec "$@"'
        cmd = ["ip", "netns", "exec", self.ns[i], "unshare", "--mount", "--propagation", "private",
               "sh", "-c", script, str(volume), mount_path, "env", "-i", *[f"{k}={v}" for k, v in env.items()], *argv]
        log = open(volume.parent / f"{self.names[i]}.log", "a")
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def stop(self, i):
        """As the kubelet stops a container: SIGTERM, then wait."""
        p = self.procs.pop(i)
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def sh_in(self, i, script, env):
        """A Job's container command, in pod i's network."""
        return sh("ip", "netns", "exec", self.ns[i], "env", "-i", *[f"{k}={v}" for k, v in env.items()],
                  "/bin/sh", "-c", script, check=False)

    def grove(self, i, *args):
        return sh("ip", "netns", "exec", self.ns[i], str(GROVE), "--server", "127.0.0.1:7181", *args, check=False)

    def close(self):
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        for ns in self.ns:
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        for etc in self.etc:
            shutil.rmtree(etc, ignore_errors=True)


def expand(s, env):
    """The kubelet's $(VAR) expansion in args."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), s)


def privileged():
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("unshare") is None:
        return False
    probe = f"grvprobe{os.getpid() % 100000}"
    ok = sh("ip", "netns", "add", probe, check=False).returncode == 0
    sh("ip", "netns", "del", probe, check=False)
    return ok


@pytest.fixture
def mount_path():
    """The voters' data mount path, which must exist on the host for the bind mounts; no
    trace of it is left."""
    path = voters(render({}))["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["mountPath"]
    created = not os.path.exists(path)
    os.makedirs(path, exist_ok=True)
    yield path
    if created:
        try:
            os.rmdir(path)
        except OSError:
            pass


def container_env(docs, container, name, secrets=None):
    """A container's environment as the kubelet gives it (values, secrets, the pod's fields).
    `secrets`: the render whose Secrets exist (the chart keeps its peer secret across
    upgrades: lookup finds the first one, which a render without a cluster cannot)."""
    env = {"PATH": "/usr/bin:/bin", "HOSTNAME": name}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "secretKeyRef" in e["valueFrom"]:
            ref = e["valueFrom"]["secretKeyRef"]
            (secret,) = [s for s in by_kind(secrets or docs, "Secret") if s["metadata"]["name"] == ref["name"]]
            env[e["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        elif e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name":
            env[e["name"]] = name
        elif e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace":
            env[e["name"]] = NAMESPACE
    return env


def voters(docs):
    return next(s for s in by_kind(docs, "StatefulSet") if s["metadata"]["name"] == "grove")


def start_pod(pods, i, docs, volume, mount_path, secrets=None):
    """Pod grove-i of the rendered StatefulSet: groved with its args and env."""
    name = f"grove-{i}"
    container = voters(docs)["spec"]["template"]["spec"]["containers"][0]
    env = container_env(docs, container, name, secrets)
    argv = [str(GROVED)] + [expand(a, env) for a in container["args"]]
    pods.run(i, argv, env, volume, mount_path)


@pytest.mark.skipif(not privileged(), reason="needs root and network namespaces")
def test_the_rendered_statefulset_forms_a_working_ensemble(tmp_path, mount_path):
    assert GROVED.exists() and GROVE.exists(), "build the workspace first (cargo build --workspace)"
    docs = render({"replicaCount": 3, "persistence": {"enabled": False}})
    sts = next(s for s in by_kind(docs, "StatefulSet") if s["metadata"]["name"] == "grove")
    headless = sts["spec"]["serviceName"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["volumeMounts"][0]["mountPath"] == mount_path
    names = [f"grove-{i}" for i in range(sts["spec"]["replicas"])]
    pods = Pods(names, lambda n: f"{n}.{headless}.{NAMESPACE}.svc.cluster.local")
    try:
        for i, name in enumerate(names):
            volume = tmp_path / name
            volume.mkdir()
            start_pod(pods, i, docs, volume, mount_path)

        # The ensemble elects a leader; every member agrees on it and lists 3 voters.
        deadline = time.time() + 60
        while True:
            out = [pods.grove(i, "status") for i in range(len(names))]
            modes = [re.search(r"Mode: (\w+)", o.stdout) for o in out]
            if all(modes) and sorted(m.group(1) for m in modes) == ["follower", "follower", "leader"]:
                break
            assert time.time() < deadline, "no ensemble formed:\n" + "\n".join(
                o.stdout + o.stderr for o in out) + "".join(
                (tmp_path / f"{n}.log").read_text()[-2000:] for n in names)
            time.sleep(0.5)
        members = pods.grove(0, "members")
        assert members.returncode == 0, members.stderr
        assert members.stdout.count(" voter ") == 3, members.stdout
        for i, n in enumerate(names):
            assert f"{i + 1} voter peer={n}.{headless}.{NAMESPACE}.svc.cluster.local:7281" in members.stdout, \
                members.stdout

        # A write through one pod is read through the others (linearizable reads).
        assert pods.grove(1, "create", "/from-grove-1", "hello").returncode == 0
        for i in (0, 2):
            got = pods.grove(i, "get", "/from-grove-1")
            assert got.stdout == "hello\n", got.stdout + got.stderr
        # Each pod's id is its ordinal + 1.
        for i in range(len(names)):
            status = pods.grove(i, "status").stdout
            assert re.search(rf"^Server id: {i + 1}$", status, re.M), status
    finally:
        pods.close()


def wait_for(what, check, timeout=90):
    deadline = time.time() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.time() < deadline, f"timed out: {what}"
        time.sleep(0.5)


@pytest.mark.skipif(not privileged(), reason="needs root and network namespaces")
def test_voters_scale_1_3_5_3_through_the_ensemble_never_a_new_bootstrap(tmp_path, mount_path):
    """`helm upgrade` with a new replicaCount, played as Kubernetes plays it: the pre-upgrade
    Job runs first (through the client Service); then the StatefulSet stops the pods beyond
    the count (deleting their claims), starts the new ones (which ask to join) and rolls the
    others from the highest ordinal down, each ready before the next."""
    assert GROVED.exists() and GROVE.exists(), "build the workspace first (cargo build --workspace)"
    renders = {n: render({"replicaCount": n, "persistence": {"enabled": False}}) for n in (1, 3, 5)}
    headless = voters(renders[5])["spec"]["serviceName"]
    names = [f"grove-{i}" for i in range(5)]
    service = f"grove.{NAMESPACE}.svc.cluster.local"
    # The client Service resolves to pod 0, which runs throughout.
    pods = Pods(names, lambda n: f"{n}.{headless}.{NAMESPACE}.svc.cluster.local", aliases={0: [service]})
    volumes = [tmp_path / n for n in names]
    running = set()

    def log_tail():
        return "".join(f"--- {n}\n" + (tmp_path / f"{n}.log").read_text()[-1500:] for n in names
                       if (tmp_path / f"{n}.log").exists())

    def ready(i):
        st = pods.grove(i, "status").stdout
        return re.search(r"^Mode: (leader|follower|standalone)$", st, re.M) and "Ready: true" in st

    def voter_ids():
        out = pods.grove(0, "members").stdout
        return sorted(int(line.split()[0]) for line in out.splitlines() if " voter " in line)

    def upgrade(n):
        docs = renders[n]
        (job,) = [j for j in by_kind(docs, "Job") if "pre-upgrade" in j["metadata"]["annotations"]["helm.sh/hook"]]
        c = job["spec"]["template"]["spec"]["containers"][0]
        env = container_env(docs, c, job["metadata"]["name"], renders[1])
        env["PATH"] = f"{GROVE.parent}:/usr/bin:/bin"
        done = pods.sh_in(0, c["command"][2], env)
        assert done.returncode == 0, done.stdout + done.stderr + log_tail()
        for i in sorted(running - set(range(n)), reverse=True):
            pods.stop(i)
            shutil.rmtree(volumes[i])
            running.discard(i)
        old = sorted(running, reverse=True)
        for i in range(n):
            if i not in running:
                volumes[i].mkdir()
                start_pod(pods, i, docs, volumes[i], mount_path, renders[1])
                running.add(i)
        for i in range(n):
            wait_for(f"grove-{i} ready\n{log_tail()}", lambda: ready(i))
        for i in old:
            pods.stop(i)
            start_pod(pods, i, docs, volumes[i], mount_path, renders[1])
            wait_for(f"grove-{i} ready after its restart\n{log_tail()}", lambda: ready(i))
        wait_for(f"{n} voters: {voter_ids()}\n{log_tail()}", lambda: voter_ids() == list(range(1, n + 1)))

    try:
        volumes[0].mkdir()
        start_pod(pods, 0, renders[1], volumes[0], mount_path)
        running.add(0)
        wait_for("the standalone pod ready", lambda: ready(0))
        assert pods.grove(0, "create", "/kept", "since-one").returncode == 0
        # The cluster id is fixed by the first member's registration, just after it is ready.
        def registered():
            found = re.search(r"^Cluster: (\w+)$", pods.grove(0, "status").stdout, re.M)
            return found and found.group(1).strip("0") and found.group(1)

        cluster = wait_for("the cluster id registered", registered)
        for n, writer in ((3, 2), (5, 4), (3, 1)):
            upgrade(n)
            # Every write so far on every pod; a write through one of them commits.
            assert pods.grove(writer, "create", f"/at-{n}-{writer}", "x").returncode == 0
            for i in range(n):
                got = pods.grove(i, "get", "/kept")
                assert got.stdout == "since-one\n", got.stdout + got.stderr
                status = pods.grove(i, "status").stdout
                assert f"Cluster: {cluster}" in status, "a second cluster bootstrapped:\n" + status
        assert voter_ids() == [1, 2, 3]
        assert pods.grove(0, "ls", "/").stdout == "[at-3-1, at-3-2, at-5-4, kept]\n"
    finally:
        pods.close()
