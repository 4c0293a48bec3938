"""The server's recipes through the client: locks with fencing tokens, semaphores, read/write
locks, elections, and what happens to each when its holder's session is lost."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List

import pytest
from harness import Groved, Proxy, wait_for

from grove import (
    Client,
    Election,
    FencedError,
    LockTimeoutError,
    SessionExpiredError,
    SessionState,
)
from grove.aio._session import lost_after


def test_lock_tokens_timeouts_and_contenders(server: Groved) -> None:
    with Client(server.client) as a, Client(server.client) as b:
        lock = a.lock("/locks/basic", "alice")
        with lock as token:
            assert token > 0 and lock.is_acquired and lock.token == token and not lock.lost.is_set()
            assert lock.node is not None and lock.node.startswith("/locks/basic/")
            other = b.lock("/locks/basic", "bob")
            started = time.monotonic()
            with pytest.raises(LockTimeoutError):
                other.acquire(timeout=0.3)
            assert 0.25 < time.monotonic() - started < 3
            assert other.acquire(blocking=False) is False
            assert lock.contenders() == ["alice"]  # the waiters gave up and left nothing behind
            # A second Lock object of the same client waits like anyone (not reentrant).
            assert a.lock("/locks/basic").acquire(blocking=False) is False
            with pytest.raises(RuntimeError):
                lock.acquire()
        assert not lock.is_acquired
        assert other.acquire(timeout=5) is True
        assert other.token is not None and other.token > token
        assert other.release() is True
        assert other.release() is False  # not held


def test_a_lock_is_handed_over_when_its_holder_loses_its_session(
    server: Groved, make_proxy: Callable[[str], Proxy]
) -> None:
    """The holder's keepalives stop reaching the server (its proxy pauses): its lock object
    reports lost 0.89 T after its last confirmed keepalive, before the server expires the
    session (at T) and grants the lock to the waiter, with a higher fencing token."""
    proxy = make_proxy(server.client)
    holder = Client(proxy.addr, timeout=2.0, request_timeout=3.0)
    waiter = Client(server.client, timeout=4.0)
    holder_states: List[SessionState] = []
    holder.add_listener(holder_states.append)
    with holder, waiter:
        T = holder.session_timeout
        assert T == 2.0
        held = holder.lock("/locks/handover")
        assert held.acquire()
        old_token = held.token
        assert old_token is not None
        times: Dict[str, float] = {}
        lost_listener = threading.Event()

        def on_state(state: SessionState) -> None:
            if state == SessionState.LOST:
                # The lock heard first: it is already marked when the listener runs.
                assert held.lost.is_set()
                lost_listener.set()

        holder.add_listener(on_state)
        threading.Thread(target=lambda: (held.lost.wait(15), times.setdefault("lost", time.monotonic()))).start()
        wanted = waiter.lock("/locks/handover")
        granted = threading.Event()

        def wait_for_it() -> None:
            wanted.acquire(timeout=15)
            times["granted"] = time.monotonic()
            granted.set()

        threading.Thread(target=wait_for_it).start()
        wait_for(lambda: len(held.contenders()) == 2, 5, "the waiter to queue")
        session = holder._aio._session
        assert session is not None
        proxy.pause()
        assert granted.wait(15), "the waiter never got the lock"
        assert lost_listener.wait(5), (holder_states, times, held.is_lost)
        assert held.is_lost and not held.is_acquired and held.lost_reason
        assert session.lost_at is not None and session.lost_at - session.confirmed >= lost_after(T) - 0.01
        # Told before anyone else could hold it: the server waits T after the last renewal.
        assert times["lost"] < times["granted"], times
        assert wanted.token is not None and wanted.token > old_token
        with pytest.raises(SessionExpiredError):
            held.release()
        # The stale holder's token is fenced.
        waiter.ensure_path("/fenced")
        t = waiter.transaction()
        t.check_fence("/locks/handover", old_token)
        t.set_data("/fenced", b"stale write")
        results = t.commit()
        assert isinstance(results[0], FencedError)
        assert waiter.get("/fenced")[0] == b""
        t = waiter.transaction()
        t.check_fence("/locks/handover", wanted.token)
        t.set_data("/fenced", b"current holder")
        assert t.commit()[0] is True
        proxy.resume()
        wanted.release()
        assert holder_states[:3] == [SessionState.CONNECTED, SessionState.SUSPENDED, SessionState.LOST]


def test_semaphore_and_read_write_locks(server: Groved) -> None:
    with Client(server.client) as a, Client(server.client) as b:
        s1, s2, s3 = a.semaphore("/sem", 2, "one"), b.semaphore("/sem", 2, "two"), b.semaphore("/sem", 2, "three")
        assert s1.acquire() and s2.acquire()
        with pytest.raises(LockTimeoutError):
            s3.acquire(timeout=0.2)
        assert sorted(s1.lease_holders()) == ["one", "two"]
        assert s1.token is not None and s2.token is not None and s1.token != s2.token
        s1.release()
        assert s3.acquire(timeout=5)
        s2.release()
        s3.release()

        r1, r2, w = a.read_lock("/rw"), b.read_lock("/rw"), b.write_lock("/rw")
        assert r1.acquire() and r2.acquire(timeout=2)  # readers share
        assert w.acquire(blocking=False) is False
        r1.release()
        assert w.acquire(blocking=False) is False
        r2.release()
        assert w.acquire(timeout=5)
        assert r1.acquire(blocking=False) is False  # a writer is alone
        w.release()


def test_election_runs_the_leader_and_hands_over(server: Groved) -> None:
    with Client(server.client) as a, Client(server.client) as b:
        order: List[Any] = []
        first = a.Election("/election/app", "host-a")
        second = Election(b, "/election/app", "host-b")
        release_first = threading.Event()

        def lead_a() -> str:
            order.append(("a", first.token, first.is_leader))
            release_first.wait(10)
            return "a done"

        def lead_b() -> str:
            order.append(("b", second.token, second.is_leader))
            return "b done"

        results: Dict[str, Any] = {}
        ta = threading.Thread(target=lambda: results.setdefault("a", first.run(lead_a)))
        ta.start()
        wait_for(lambda: order, 5, "a to lead")
        tb = threading.Thread(target=lambda: results.setdefault("b", second.run(lead_b)))
        tb.start()
        wait_for(lambda: len(first.contenders()) == 2, 5, "b to campaign")
        assert first.contenders() == ["host-a", "host-b"]
        leader = first.leader()
        assert leader is not None and leader.value == b"host-a" and leader.token == first.token
        first.proclaim(b"host-a v2")
        assert second.leader().value == b"host-a v2"  # type: ignore[union-attr]
        release_first.set()
        ta.join(10)
        tb.join(10)
        assert results == {"a": "a done", "b": "b done"}
        assert order[0][0] == "a" and order[1][0] == "b" and order[1][1] > order[0][1]
        assert all(is_leader for _, _, is_leader in order)

        # cancel() stops a campaign: run() returns None.
        blocker = a.Election("/election/cancel", "x")
        hold = threading.Event()
        tblock = threading.Thread(target=lambda: blocker.run(hold.wait, 10))
        tblock.start()
        wait_for(lambda: blocker.is_leader, 5, "the blocker to lead")
        waiting = b.Election("/election/cancel", "y")
        out: List[Any] = []
        t = threading.Thread(target=lambda: out.append(waiting.run(lambda: "ran")))
        t.start()
        wait_for(lambda: len(blocker.contenders()) == 2, 5, "y to campaign")
        waiting.cancel()
        t.join(5)
        assert out == [None]
        hold.set()
        tblock.join(5)


def test_an_election_stops_on_lost(server: Groved, make_proxy: Callable[[str], Proxy]) -> None:
    proxy = make_proxy(server.client)
    leader_client = Client(proxy.addr, timeout=2.0, request_timeout=3.0)
    other_client = Client(server.client, timeout=4.0)
    with leader_client, other_client:
        election = leader_client.Election("stops-on-lost", "first")  # /elections/stops-on-lost
        successor = other_client.Election("stops-on-lost", "second")
        noticed: List[float] = []

        def lead() -> str:
            proxy.pause()
            # A leader polls (or waits on) `lost` and stops when it is set.
            if election.lost.wait(10):
                noticed.append(time.monotonic())
            return "stopped"

        outcome: Dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["first"] = election.run(lead)
            except SessionExpiredError as e:
                outcome["first"] = e

        t = threading.Thread(target=run)
        t.start()
        wait_for(lambda: election.is_leader or noticed, 5, "the first to lead")
        first_token = election.token
        elected: List[Any] = []
        t2 = threading.Thread(target=lambda: elected.append((successor.run(lambda: successor.token), time.monotonic())))
        t2.start()
        t.join(15)
        t2.join(15)
        assert isinstance(outcome["first"], SessionExpiredError)  # the election was exited
        assert not election.is_leader
        assert noticed and elected
        token, when = elected[0]
        assert first_token is not None and token > first_token
        assert noticed[0] < when  # the old leader was told before the new one was elected
        proxy.resume()
