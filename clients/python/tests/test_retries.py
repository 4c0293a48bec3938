"""Retries across servers: writes keep their request id through a leader's death and are
applied once; reads carry min_zxid, so a client moving to a lagging server reads its own
writes; without a quorum, a write's outcome is reported unknown (ConnectionLossError)."""

from __future__ import annotations

import time
from typing import Callable, List

import pytest
from harness import Cluster, StateLog

from grove import Client, ConnectionLossError, Consistency, SessionState


def test_writes_through_a_leader_kill_are_applied_once(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(3)
    leader = cluster.leader()
    others = [i for i in cluster.members if i != leader]
    # Unreachable, then killed, servers in the list: every request must find a live one.
    with Client(cluster.hosts(leader, *others), timeout=4.0, request_timeout=10.0) as c:
        c.ensure_path("/seq")
        created: List[str] = []
        for i in range(30):
            if i == 10:
                cluster.members[leader].kill9()
            created.append(c.create("/seq/n-", str(i).encode(), sequence=True))
        # Each create once, in order: a retried create that had been applied was answered with
        # its first result, not applied again.
        assert created == [f"/seq/n-{i:010d}" for i in range(30)]
        assert c.get_children("/seq") == [p.rsplit("/", 1)[1] for p in created]
        assert [c.get(p)[0] for p in created] == [str(i).encode() for i in range(30)]


def test_reads_carry_min_zxid_across_servers(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(3)
    leader = cluster.leader()
    follower = next(i for i in cluster.members if i != leader)
    with Client(cluster.hosts(leader, follower), read_consistency=Consistency.SEQUENTIAL) as c:
        c.create("/ryw", b"0")
        for i in range(1, 30):
            st = c.set("/ryw", str(i).encode())
            assert c.last_zxid >= st.mzxid
            # The next read goes to the follower, served locally (SEQUENTIAL): min_zxid makes it
            # wait until it has applied the write this client just made.
            c._aio._current = 1
            assert c.get("/ryw")[0] == str(i).encode()
            c._aio._current = 0


def test_without_a_quorum_a_write_is_reported_unknown(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(3)
    leader = cluster.leader()
    survivor = next(i for i in cluster.members if i != leader)
    with Client(cluster.addr(survivor), timeout=10.0, request_timeout=1.5) as c:
        c.ensure_path("/nq")
        for i in cluster.members:
            if i != survivor:
                cluster.members[i].kill9()
        started = time.monotonic()
        with pytest.raises(ConnectionLossError) as e:
            c.create("/nq/x")
        assert 1.4 < time.monotonic() - started < 3
        assert "may or may not" in str(e.value)


def test_keepalives_on_a_server_without_quorum_suspend_then_lose_the_session(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(3)
    leader = cluster.leader()
    survivor = next(i for i in cluster.members if i != leader)
    client = Client(cluster.addr(survivor), timeout=2.0, request_timeout=3.0)
    log = StateLog()
    client.add_listener(log)
    with client:
        for i in cluster.members:
            if i != survivor:
                cluster.members[i].kill9()
        deadline = time.monotonic() + 2 * 2.0
        while time.monotonic() < deadline and SessionState.LOST not in log.states():
            time.sleep(0.05)
        assert log.states()[:3] == [SessionState.CONNECTED, SessionState.SUSPENDED, SessionState.LOST]


