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

    def __init__(self, names, hosts_of):
        tag = os.getpid() % 100000
        self.subnet = f"10.231.{tag % 250}"
        self.bridge = f"grvbr{tag}"
        self.names = names
        self.ns = [f"grv{tag}-{i}" for i in range(len(names))]
        self.procs = []
        self.etc = []
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "link", "set", self.bridge, "up")
        hosts = "127.0.0.1 localhost\n" + "".join(
            f"{self.subnet}.{i + 1} {hosts_of(n)} {n}\n" for i, n in enumerate(names)
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
        log = open(volume.parent / f"{self.names[i]}.log", "w")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))

    def grove(self, i, *args):
        return sh("ip", "netns", "exec", self.ns[i], str(GROVE), "--server", "127.0.0.1:7181", *args, check=False)

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
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


@pytest.mark.skipif(not privileged(), reason="needs root and network namespaces")
def test_the_rendered_statefulset_forms_a_working_ensemble(tmp_path):
    assert GROVED.exists() and GROVE.exists(), "build the workspace first (cargo build --workspace)"
    docs = render({"replicaCount": 3, "persistence": {"enabled": False}})
    sts = next(s for s in by_kind(docs, "StatefulSet") if s["metadata"]["name"] == "grove")
    headless = sts["spec"]["serviceName"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    mount_path = container["volumeMounts"][0]["mountPath"]
    names = [f"grove-{i}" for i in range(sts["spec"]["replicas"])]

    # The mount point must exist on the host for the bind mount; leave no trace of it.
    created_mount_point = not os.path.exists(mount_path)
    os.makedirs(mount_path, exist_ok=True)
    pods = Pods(names, lambda n: f"{n}.{headless}.{NAMESPACE}.svc.cluster.local")
    try:
        for i, name in enumerate(names):
            env = {"PATH": "/usr/bin:/bin", "HOSTNAME": name}
            for e in container["env"]:
                if "value" in e:
                    env[e["name"]] = e["value"]
                elif "secretKeyRef" in e["valueFrom"]:
                    ref = e["valueFrom"]["secretKeyRef"]
                    (secret,) = [s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == ref["name"]]
                    env[e["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
                elif e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name":
                    env[e["name"]] = name
                elif e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace":
                    env[e["name"]] = NAMESPACE
            argv = [str(GROVED)] + [expand(a, env) for a in container["args"]]
            volume = tmp_path / name
            volume.mkdir()
            pods.run(i, argv, env, volume, mount_path)

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
        if created_mount_point:
            try:
                os.rmdir(mount_path)
            except OSError:
                pass
