"""The ZooKeeper verbs against a real standalone groved, and every error they can provoke."""

from __future__ import annotations

import threading
import time
from typing import Iterator, List

import pytest

import grove
from grove import (
    BadArgumentsError,
    BadVersionError,
    Client,
    CreateMode,
    EventType,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistencyError,
    TooLargeError,
    ZnodeStat,
    make_digest_acl,
)
from grove import _proto as pb

from harness import Groved, wait_for


@pytest.fixture
def client(server: Groved) -> Iterator[Client]:
    with Client(server.client, timeout=4.0, request_timeout=5.0) as c:
        yield c


def test_create_get_set_delete(client: Client) -> None:
    assert client.create("/v/a", b"hello", makepath=True) == "/v/a"
    data, stat = client.get("/v/a")
    assert data == b"hello"
    assert isinstance(stat, ZnodeStat)
    assert (stat.version, stat.data_length, stat.num_children, stat.ephemeral_owner) == (0, 5, 0, 0)
    assert stat.czxid == stat.mzxid > 0 and stat.ctime == stat.mtime > 0
    assert client.last_zxid >= stat.mzxid

    st = client.set("/v/a", b"two")
    assert st.version == 1 and st.mzxid > stat.mzxid
    assert client.set("/v/a", b"three", version=1).version == 2
    with pytest.raises(BadVersionError) as e:
        client.set("/v/a", b"stale", version=1)
    assert e.value.code == grove.ErrorCode.BAD_VERSION and e.value.path == "/v/a" and e.value.actual_version == 2
    assert client.get("/v/a")[0] == b"three"

    assert client.exists("/v/a") is not None and client.exists("/v/none") is None
    path, st = client.create("/v/b", include_data=True)
    assert path == "/v/b" and st.version == 0
    assert client.get_children("/v") == ["a", "b"]
    names, parent = client.get_children("/v", include_data=True)
    assert names == ["a", "b"] and parent.num_children == 2 and parent.cversion == 2

    with pytest.raises(BadVersionError):
        client.delete("/v/a", version=0)
    assert client.delete("/v/a", version=2) is True
    with pytest.raises(NoNodeError) as e2:
        client.get("/v/a")
    assert e2.value.path == "/v/a" and e2.value.code == grove.ErrorCode.NO_NODE
    with pytest.raises(NoNodeError):
        client.delete("/v/a")
    with pytest.raises(NoNodeError):
        client.set("/v/a", b"x")


def test_errors_of_the_tree(client: Client) -> None:
    client.create("/e/full/child", makepath=True)
    with pytest.raises(NodeExistsError) as e:
        client.create("/e/full")
    assert e.value.path == "/e/full" and e.value.code == grove.ErrorCode.NODE_EXISTS
    with pytest.raises(NotEmptyError):
        client.delete("/e/full")
    with pytest.raises(NoNodeError):
        client.create("/e/missing/child")  # no makepath
    client.create("/e/eph", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        client.create("/e/eph/child")
    # Bad arguments, refused by the server...
    for bad in ["/e/trailing/", "/e//double", "/e/./dot"]:
        with pytest.raises(BadArgumentsError) as e3:
            client.create(bad)
        assert e3.value.code == grove.ErrorCode.BAD_ARGUMENTS and e3.value.grpc_code is not None
    with pytest.raises(BadArgumentsError):
        client.set("/e/full", b"x", version=-2)  # kazoo's -1 means any; others are rejected
    with pytest.raises(TooLargeError):
        client.create("/e/big", b"x" * 70_000)  # the server's --max-data-bytes is 65536
    # ...and by the client before sending anything.
    with pytest.raises(BadArgumentsError):
        client.create("relative")
    with pytest.raises(BadArgumentsError):
        client.create("/e/ttl", ephemeral=True, ttl=1000)
    with pytest.raises(TypeError):
        client.create("/e/str", "not bytes")  # type: ignore[arg-type]


def test_recursive_delete_and_ensure_path(client: Client) -> None:
    assert client.ensure_path("/r/a/b/c") is True
    assert client.ensure_path("/r/a/b/c") is True
    for i in range(5):
        client.create(f"/r/a/n{i}", b"x")
    assert client.count_descendants("/r") == 8
    assert client.delete("/r", recursive=True) is True
    assert client.exists("/r") is None
    assert client.delete("/r", recursive=True) is True  # already gone: fine, as kazoo


def test_sequential_ephemeral_container_and_ttl_modes(server: Groved, client: Client) -> None:
    client.ensure_path("/m")
    seq = [client.create("/m/s-", b"", sequence=True) for _ in range(3)]
    assert seq == ["/m/s-0000000000", "/m/s-0000000001", "/m/s-0000000002"]

    # Ephemerals belong to the session and go with it.
    other = Client(server.client, timeout=2.0)
    other.start()
    eph = other.create("/m/eph-", b"", ephemeral=True, sequence=True)
    assert eph.startswith("/m/eph-")
    st = client.exists(eph)
    assert st is not None and st.ephemeral_owner == other.session_id and st.mode == CreateMode.EPHEMERAL_SEQUENTIAL
    assert other.get_ephemerals("/m") == [eph]
    other.close()
    assert client.exists(eph) is None  # closing the session deleted it at once

    # A TTL node goes once unmodified for its TTL (the server reaps every 200 ms here).
    client.create("/m/ttl", b"t", ttl=300)
    st = client.exists("/m/ttl")
    assert st is not None and st.mode == CreateMode.PERSISTENT_WITH_TTL and st.ttl == 300 and st.ephemeral_owner == 0
    wait_for(lambda: client.exists("/m/ttl") is None, 10, "the TTL node to be reaped")

    # A container goes once it has had children and has none left.
    client.create("/m/box", container=True)
    client.create("/m/box/item")
    time.sleep(0.5)
    assert client.exists("/m/box") is not None  # it has a child
    client.delete("/m/box/item")
    wait_for(lambda: client.exists("/m/box") is None, 10, "the container to be reaped")


def test_transactions(client: Client) -> None:
    client.create("/t", b"0")
    t = client.transaction()
    t.check("/t", 0)
    t.create("/t/a", b"a")
    t.create("/t/s-", b"", sequence=True)
    t.set_data("/t", b"1", version=0)
    t.delete("/t/a")
    results = t.commit()
    assert results[0] is True and results[1] == "/t/a" and results[2] == "/t/s-0000000001"
    assert isinstance(results[3], ZnodeStat) and results[3].version == 1
    assert results[4] is True
    assert client.get_children("/t") == ["s-0000000001"]
    with pytest.raises(ValueError):
        t.commit()

    # All or nothing: kazoo's result shape, nothing applied.
    with client.transaction() as t2:
        t2.create("/t/b")
        t2.check("/t", 0)  # stale
        t2.delete("/t/s-0000000001")
    assert t2.committed
    t3 = client.transaction()
    t3.create("/t/b")
    t3.check("/t", 0)
    t3.delete("/t/s-0000000001")
    r = t3.commit()
    assert isinstance(r[0], RolledBackError) and r[0].code == grove.ErrorCode.OK
    assert isinstance(r[1], BadVersionError) and r[1].path == "/t"
    assert isinstance(r[2], RuntimeInconsistencyError)
    assert client.exists("/t/b") is None and client.exists("/t/s-0000000001") is not None


def test_acls_and_no_auth(server: Groved) -> None:
    alice = Client(server.client, auth_data=[("digest", "alice:secret")])
    anonymous = Client(server.client)
    with alice, anonymous:
        acl = [make_digest_acl("alice", "secret", all=True), grove.ACL(grove.Permissions.READ, grove.Id("world", "anyone"))]
        alice.create("/acl", b"private", acl=acl)
        assert anonymous.get("/acl")[0] == b"private"  # world may read
        with pytest.raises(NoAuthError) as e:
            anonymous.set("/acl", b"mine")
        assert e.value.code == grove.ErrorCode.NO_AUTH
        with pytest.raises(NoAuthError):
            anonymous.create("/acl/child")
        alice.set("/acl", b"still private")
        acls, stat = alice.get_acls("/acl")
        assert [a.id.scheme for a in acls] == ["digest", "world"] and stat.aversion == 0
        alice.set_acls("/acl", [make_digest_acl("alice", "secret", all=True)], version=0)
        with pytest.raises(NoAuthError):
            anonymous.get("/acl")
        with pytest.raises(BadArgumentsError):
            Client(server.client, auth_data=[("ip", "10.0.0.1")])


def test_chroot(server: Groved, client: Client) -> None:
    with Client(server.client + "/apps/one") as jailed:
        jailed.ensure_path("/")
        assert jailed.create("/cfg", b"c") == "/cfg"
        assert jailed.create("/cfg/s-", sequence=True) == "/cfg/s-0000000000"
        assert client.get("/apps/one/cfg")[0] == b"c"
        assert jailed.get_children("/") == ["cfg"]
        w = jailed.watch("/cfg", grove.WatchKind.SUBTREE)
        client.set("/apps/one/cfg", b"d")
        ev = w.get(timeout=5)
        assert ev.path == "/cfg" and ev.type == EventType.CHANGED
        w.close()


def test_a_retried_write_is_applied_once(client: Client) -> None:
    """The same grove-request-id on every retry of one logical write: the server answers a
    repeat with the first result instead of applying it again."""
    client.ensure_path("/once")
    req = pb.nodes_pb2.CreateRequest(path="/once/s-", mode=int(CreateMode.PERSISTENT_SEQUENTIAL))
    rid = grove._connect.new_request_id()
    aio = client._aio
    first = client._run(aio._call(lambda s: s.nodes.Create, req, write=True, request_id=rid))
    again = client._run(aio._call(lambda s: s.nodes.Create, req, write=True, request_id=rid))
    assert first.path == again.path == "/once/s-0000000000"
    assert client.get_children("/once") == ["s-0000000000"]
    fresh = client._run(aio._call(lambda s: s.nodes.Create, req, write=True))
    assert fresh.path == "/once/s-0000000001"


def test_one_shot_watch_callbacks(client: Client) -> None:
    client.create("/ow", b"0")
    got: List[grove.WatchedEvent] = []
    fired = threading.Event()
    threads: List[str] = []

    def on_change(event: grove.WatchedEvent) -> None:
        got.append(event)
        threads.append(threading.current_thread().name)
        fired.set()

    client.get("/ow", watch=on_change)
    client.set("/ow", b"1")
    client.set("/ow", b"2")
    assert fired.wait(5)
    time.sleep(0.2)
    assert [e.type for e in got] == [EventType.CHANGED]  # once
    assert got[0].path == "/ow" and threads[0].startswith("grove-events")

    fired.clear()
    client.exists("/ow/new", watch=on_change)
    client.create("/ow/new")
    assert fired.wait(5) and got[-1].type == EventType.CREATED

    fired.clear()
    client.get_children("/ow", watch=on_change)
    client.create("/ow/second")
    assert fired.wait(5) and got[-1].type == EventType.CHILD and got[-1].path == "/ow"


def test_connection_loss_when_no_server_answers() -> None:
    c = Client("127.0.0.1:1", timeout=2.0, request_timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(grove.ConnectionLossError):
            c.start()
        assert time.monotonic() - started < 3
    finally:
        c.close()
    with pytest.raises(grove.ClientClosedError):
        c.get("/")
