"""Watches: resumed by zxid across a server kill (no gap, no duplicate), explicit cancels,
and kazoo's DataWatch / ChildrenWatch."""

from __future__ import annotations

import threading
import time
from typing import Callable, List, Optional, Tuple

import pytest
from harness import Cluster, Groved, wait_for

from grove import (
    Client,
    CompactedError,
    EventType,
    SlowConsumerError,
    WatchEvent,
    WatchKind,
    ZnodeStat,
)


def test_a_watch_resumes_across_a_server_kill_without_gap_or_duplicate(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(3)
    leader = cluster.leader()
    follower, other = [i for i in cluster.members if i != leader]
    # The watcher's stream is on a follower, which is killed mid-way; the writer uses the rest.
    watcher = Client(cluster.hosts(follower, leader, other), timeout=4.0)
    writer = Client(cluster.hosts(leader, other), timeout=4.0)
    with watcher, writer:
        writer.create("/w", b"", makepath=True)
        watcher.get("/w")  # the watch starts after what the watcher has seen
        watch = watcher.watch("/w", WatchKind.SUBTREE, include_data=True)
        assert watcher.server == cluster.addr(follower)
        written: List[Tuple[int, bytes]] = []
        got: List[WatchEvent] = []

        def collect(until: int) -> None:
            while not got or got[-1].zxid < until:
                got.append(watch.get(timeout=15))

        for i in range(40):
            value = f"{i}".encode()
            stat = writer.set("/w", value) if i % 2 else writer.create(f"/w/n{i}", value, include_data=True)[1]
            written.append((stat.mzxid, value))
            if i == 19:
                collect(stat.mzxid)  # events before the kill arrived
                before = len(got)
                cluster.members[follower].kill9()
        collect(written[-1][0])
        assert watch._aw._hub._gen >= 2  # the stream was opened again, on another server
        watch.close()

    assert 0 < before < len(got)
    zxids = [e.zxid for e in got]
    assert zxids == sorted(set(zxids)), "events out of order or duplicated"
    assert [(e.zxid, e.data) for e in got] == written  # every change once, in zxid order
    assert [e.type for e in got[:2]] == [EventType.CREATED, EventType.CHANGED]


def test_a_compacted_history_cancels_the_watch_explicitly(make_server: Callable[..., Groved]) -> None:
    server = make_server("--watch-history-entries", "5")
    with Client(server.client) as c:
        c.create("/h", b"0")
        first = c.exists("/h")
        assert first is not None
        for i in range(30):
            c.set("/h", f"{i}".encode())
        with pytest.raises(CompactedError) as e:
            w = c.watch("/h", start_zxid=first.czxid)
            w.get(timeout=5)
        assert e.value.oldest_zxid > first.czxid
        # From the oldest zxid still available, it works.
        w = c.watch("/h", start_zxid=e.value.oldest_zxid)
        ev = w.get(timeout=5)
        assert ev.zxid >= e.value.oldest_zxid
        w.close()


def test_a_consumer_that_falls_behind_is_cancelled_explicitly(server: Groved) -> None:
    with Client(server.client, max_watch_queue=5) as c:
        c.create("/slow", b"")
        w = c.watch("/slow")
        for _ in range(10):
            c.set("/slow", b"x")
        wait_for(lambda: w._q.qsize() >= 6, 5, "the queue to fill")
        with pytest.raises(SlowConsumerError):
            for _ in range(10):
                w.get(timeout=5)


def test_watch_kinds_and_one_shot(server: Groved) -> None:
    with Client(server.client) as c:
        c.create("/k/a", b"", makepath=True)
        children = c.watch("/k", WatchKind.CHILDREN)
        node = c.watch("/k/a", WatchKind.NODE, include_data=True)
        once = c.watch("/k/a", one_shot=True)
        c.create("/k/b")
        c.set("/k/a", b"1")
        c.delete("/k/a")
        assert children.get(timeout=5).type == EventType.CHILD
        assert [node.get(timeout=5).type for _ in range(2)] == [EventType.CHANGED, EventType.DELETED]
        assert once.get(timeout=5).type == EventType.CHANGED
        with pytest.raises(StopIteration):
            once.get(timeout=5)
        assert children.get(timeout=5).type == EventType.CHILD  # /k/a deleted
        assert c.last_zxid >= children.last_zxid > 0
        children.close()
        node.close()
        with pytest.raises(StopIteration):
            next(iter(node))


def test_data_watch_and_children_watch(server: Groved) -> None:
    with Client(server.client) as c:
        seen: List[Tuple[Optional[bytes], Optional[int]]] = []
        threads: List[str] = []
        changed = threading.Condition()

        @c.DataWatch("/dw")
        def on_data(data: Optional[bytes], stat: Optional[ZnodeStat]) -> None:
            with changed:
                seen.append((data, stat.version if stat else None))
                threads.append(threading.current_thread().name)
                changed.notify_all()

        # As in kazoo: called once before DataWatch returns, (None, None) while missing.
        assert seen == [(None, None)]
        c.create("/dw", b"a")
        c.set("/dw", b"b")
        c.delete("/dw")
        c.create("/dw", b"c")
        with changed:
            assert changed.wait_for(lambda: len(seen) >= 5, 5)
        assert seen == [(None, None), (b"a", 0), (b"b", 1), (None, None), (b"c", 0)]
        assert all(t.startswith("grove-events") for t in threads)

        lists: List[List[str]] = []
        c.ensure_path("/cw")

        def on_children(children: List[str]) -> Optional[bool]:
            lists.append(children)
            return False if "stop" in children else None

        cw = c.ChildrenWatch("/cw", on_children)
        assert lists == [[]]
        c.create("/cw/x")
        wait_for(lambda: lists[-1] == ["x"], 5, "[x]")
        c.create("/cw/y")
        wait_for(lambda: lists[-1] == ["x", "y"], 5, "[x, y]")
        c.create("/cw/stop")
        wait_for(lambda: cw.stopped, 5, "the watcher to stop when told")
        c.create("/cw/z")
        time.sleep(0.3)
        assert lists == [[], ["x"], ["x", "y"], ["stop", "x", "y"]]
