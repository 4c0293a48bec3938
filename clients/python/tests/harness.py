"""Real groved processes for the client's tests: standalone servers on OS-assigned ports, and
3-node ensembles on free ports chosen here, all on 127.0.0.1, each stopped by its PID when its
test (or module) ends. The binary is $GROVED, default <repo>/target/debug/groved."""

from __future__ import annotations

import os
import queue
import random
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import grpc
import pytest

from grove import _proto as pb

REPO = Path(__file__).resolve().parents[3]

#: Raft timing for tests (server/tests/it/cluster.rs): quick elections, far above loopback
#: latencies.
FAST_RAFT = [
    "--heartbeat-ms", "100",
    "--election-timeout-min-ms", "600",
    "--election-timeout-max-ms", "1200",
    "--request-timeout-ms", "3000",
]
#: Short sessions allowed (the default minimum is 4 s) and quick reaping of TTL/container nodes.
TEST_SERVER = ["--min-session-timeout-ms", "1000", "--reap-interval-ms", "200"]


def groved_bin() -> Path:
    p = Path(os.environ.get("GROVED") or REPO / "target" / "debug" / "groved")
    if not p.is_absolute():
        p = REPO / p
    if not p.exists():
        pytest.fail(f"groved not found at {p}: build it (cargo build --bin groved) or set GROVED")
    return p


_given_ports: List[int] = []


def free_port() -> int:
    """A free port below Linux's ephemeral range (which OS-assigned ports come from), never the
    same twice in this process."""
    for _ in range(1000):
        port = random.randint(20000, 32000)
        if port in _given_ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given_ports.append(port)
        return port
    raise RuntimeError("no free port")


class Groved:
    """One groved process."""

    def __init__(self, dir: Path, args: List[str], ports: Optional[Tuple[int, int, int]] = None) -> None:
        self.dir = dir
        self.args = args
        self.ports = ports
        self.proc: Optional[subprocess.Popen] = None
        self.client = ""
        self.admin = ""
        self.start()

    def start(self) -> None:
        self.spawn()
        self.await_ready()

    def spawn(self) -> None:
        """Starts the process without waiting: a voter of a stopped majority only gets
        ready once enough of the others run too (it waits for a majority's identity check)."""
        assert self.proc is None
        self.dir.mkdir(parents=True, exist_ok=True)
        c, p, a = (f"127.0.0.1:{x}" for x in self.ports) if self.ports else ("127.0.0.1:0",) * 3
        log = open(self.dir / "groved.log", "ab")
        self.proc = subprocess.Popen(
            [str(groved_bin()), "--data-dir", str(self.dir / "data"), "--listen", c, "--peer-listen", p,
             "--admin-listen", a, *self.args],
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "RUST_LOG": "info,openraft=warn"},
        )
        log.close()
        lines: "queue.Queue[str]" = queue.Queue()
        self._ready = lines
        out = self.proc.stdout
        assert out is not None

        def read() -> None:
            for raw in out:
                line = raw.decode(errors="replace")
                if line.startswith("groved listening"):
                    lines.put(line)

        threading.Thread(target=read, daemon=True).start()

    def await_ready(self) -> None:
        try:
            line = self._ready.get(timeout=30)
        except queue.Empty:
            self.kill9()
            raise RuntimeError(f"groved did not start; its log:\n{self.log_tail()}") from None
        fields = dict(w.split("=", 1) for w in line.split() if "=" in w)
        self.client, self.admin = fields["client"], fields.get("admin", "")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join((self.dir / "groved.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def status(self, timeout: float = 2.0) -> object:
        with grpc.insecure_channel(self.client) as ch:
            return pb.cluster_pb2_grpc.ClusterStub(ch).Status(pb.cluster_pb2.StatusRequest(), timeout=timeout)


class Cluster:
    """Voters 1..n on fixed free ports."""

    def __init__(self, root: Path, n: int, extra: List[str]) -> None:
        ports = [(free_port(), free_port(), free_port()) for _ in range(n)]
        peers = ",".join(f"{i + 1}=127.0.0.1:{p[1]}" for i, p in enumerate(ports))
        self.members: Dict[int, Groved] = {}
        errors: List[BaseException] = []

        def start(i: int) -> None:
            try:
                self.members[i + 1] = Groved(
                    root / f"n{i + 1}", ["--id", str(i + 1), "--peers", peers, *FAST_RAFT, *extra], ports[i]
                )
            except BaseException as e:  # pragma: no cover
                errors.append(e)

        # All at once: each needs the others to form the ensemble.
        threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.kill_all()
            raise errors[0]

    def addr(self, i: int) -> str:
        return self.members[i].client

    def hosts(self, *ids: int) -> str:
        return ",".join(self.addr(i) for i in ids)

    def running(self) -> List[int]:
        return [i for i, m in self.members.items() if m.running]

    def leader(self, timeout: float = 20.0) -> int:
        """Waits until the running members agree on one leader that has a quorum."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            leaders, seen = [], []
            for i in self.running():
                try:
                    st = self.members[i].status()
                except grpc.RpcError as e:
                    last = str(e.code())
                    continue
                if st.mode == pb.cluster_pb2.LEADER and st.quorum:
                    leaders.append(i)
                seen.append(st.leader_id)
            if len(leaders) == 1 and seen and all(s == leaders[0] for s in seen) and len(seen) == len(self.running()):
                return leaders[0]
            time.sleep(0.1)
        raise AssertionError(f"no single leader within {timeout} s ({last})")

    def restart(self, *ids: int) -> None:
        """Starts stopped members together, as a majority restarted at once must be."""
        for i in ids:
            self.members[i].spawn()
        for i in ids:
            self.members[i].await_ready()

    def kill(self, *ids: int) -> None:
        """SIGKILL to all of them first, then wait for each: they die together."""
        for i in ids:
            proc = self.members[i].proc
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        for i in ids:
            self.members[i].kill9()

    def kill_all(self) -> None:
        self.kill(*self.members)


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of one server. `pause()` stops forwarding in both
    directions while keeping the connections open: to the client, a server that went silent
    (as a partition or a stopped process looks); to the server, a client that went silent."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.addr = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.paused = threading.Event()
        self.closed = threading.Event()
        self.sockets: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(self.target, timeout=5)
            except OSError:
                conn.close()
                continue
            self.sockets += [conn, up]
            threading.Thread(target=self._pump, args=(conn, up), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        try:
            while not self.closed.is_set():
                if self.paused.is_set():
                    time.sleep(0.02)
                    continue
                ready, _, _ = select.select([a, b], [], [], 0.05)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    peer[s].sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()

    def pause(self) -> None:
        self.paused.set()

    def resume(self) -> None:
        self.paused.clear()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


def wait_for(cond: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    """Polls `cond` every 20 ms until it returns something truthy; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class StateLog:
    """Records session-state transitions with the monotonic time each was seen."""

    def __init__(self) -> None:
        self.events: List[Tuple[float, object]] = []
        self.lock = threading.Lock()

    def __call__(self, state: object) -> None:
        with self.lock:
            self.events.append((time.monotonic(), state))

    def states(self) -> List[object]:
        with self.lock:
            return [s for _, s in self.events]

    def when(self, state: object, after: float = 0.0) -> Optional[float]:
        with self.lock:
            return next((t for t, s in self.events if s == state and t >= after), None)
