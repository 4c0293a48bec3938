"""Sessions across real server failures: failover with the session resumed (its ephemerals
survive), the state listener's transitions, and the LOST timing of the session-state rule."""

from __future__ import annotations

import time
from typing import Callable

from harness import Cluster, Groved, Proxy, StateLog, wait_for

from grove import Client, SessionState
from grove.aio._session import lost_after, suspended_after

S = SessionState


def test_failover_keeps_the_session_then_lost_when_every_server_is_gone(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(3)
    leader = cluster.leader()
    others = [i for i in cluster.members if i != leader]
    # The client starts on the leader: killing it also makes the ensemble elect another.
    client = Client(cluster.hosts(leader, *others), timeout=4.0, request_timeout=8.0)
    log = StateLog()
    client.add_listener(log)
    client.start()
    try:
        T = client.session_timeout
        assert T == 4.0
        sid = client.session_id
        client.create("/f/eph", b"mine", ephemeral=True, makepath=True)
        assert client.server == cluster.addr(leader)
        wait_for(lambda: log.states() == [S.CONNECTED], 5, "CONNECTED")

        killed = time.monotonic()
        cluster.members[leader].kill9()
        wait_for(lambda: S.RECONNECTED in log.states(), 15, "RECONNECTED after the kill")
        assert log.states() == [S.CONNECTED, S.SUSPENDED, S.RECONNECTED]
        assert log.when(S.SUSPENDED, killed) is not None
        assert client.session_id == sid
        assert client.server in (cluster.addr(others[0]), cluster.addr(others[1]))
        # The session was resumed, not replaced: its ephemeral is still there, for everyone.
        with Client(cluster.hosts(*others)) as observer:
            stat = observer.exists("/f/eph")
            assert stat is not None and stat.ephemeral_owner == sid
        assert client.get("/f/eph")[0] == b"mine"

        # Every server gone: LOST by the local timer, 0.89 T after the send time of the last
        # confirmed keepalive, never before T/3 nor later than T.
        session = client._aio._session
        assert session is not None
        cluster.kill(*others)
        gone = time.monotonic()
        wait_for(lambda: S.LOST in log.states(), 2 * T + 2, "LOST")
        assert log.states() == [S.CONNECTED, S.SUSPENDED, S.RECONNECTED, S.SUSPENDED, S.LOST]
        assert session.lost_at is not None
        since_confirmed = session.lost_at - session.confirmed
        assert since_confirmed >= suspended_after(T)
        assert lost_after(T) - 0.01 <= since_confirmed <= T, since_confirmed
        assert session.lost_at - gone <= lost_after(T) + 0.1
        assert client.session_id is None

        # Servers back: the next operation that needs a session opens a new one (CONNECTED).
        cluster.restart(*cluster.members)
        cluster.leader()
        client.create("/f/eph2", ephemeral=True)
        assert log.states()[5] == S.CONNECTED, log.events
        assert client.session_id not in (None, sid)
        # The old session is gone on the servers too (expired, or closed by the client).
        wait_for(lambda: client.exists("/f/eph") is None, 10, "the lost session's ephemeral to go")
    finally:
        client.close()
    assert log.states()[-1] == S.CLOSED


def test_suspended_then_lost_when_the_only_server_goes_silent(
    make_server: Callable[..., Groved], make_proxy: Callable[[str], Proxy]
) -> None:
    """A server that stops answering (no broken stream): SUSPENDED at T/3 after the last
    confirmed send, LOST at 0.89 T; and SESSION_EXPIRED from the server after it comes back
    would have been too late, so the client never tries to resume the lost session."""
    server = make_server()
    proxy = make_proxy(server.client)
    client = Client(proxy.addr, timeout=2.0, request_timeout=3.0)
    log = StateLog()
    client.add_listener(log)
    client.start()
    try:
        T = client.session_timeout
        assert T is not None
        time.sleep(0.6)  # a few keepalives
        session = client._aio._session
        assert session is not None
        proxy.pause()
        paused = time.monotonic()
        wait_for(lambda: S.LOST in log.states(), 2 * T + 1, "LOST")
        assert log.states() == [S.CONNECTED, S.SUSPENDED, S.LOST]
        suspended = log.when(S.SUSPENDED)
        assert suspended is not None and suspended - paused <= suspended_after(T) + 0.15
        assert session.lost_at is not None
        assert lost_after(T) - 0.01 <= session.lost_at - session.confirmed <= T
        proxy.resume()
        # A new session on the next use.
        client.create("/silent", ephemeral=True)
        assert log.states()[-1] == S.CONNECTED and client.session_id != session.id
    finally:
        client.close()


def test_session_expired_from_the_server_is_lost_at_once(server: Groved) -> None:
    """A server saying the session expired makes it LOST immediately (here: another client
    closed it with its id and secret)."""
    client = Client(server.client, timeout=10.0)
    log = StateLog()
    client.add_listener(log)
    client.start()
    try:
        sid, secret = client.client_id  # type: ignore[misc]
        from grove import _proto as pb
        import grpc

        with grpc.insecure_channel(server.client) as ch:
            pb.sessions_pb2_grpc.SessionsStub(ch).Close(pb.sessions_pb2.CloseSessionRequest(session_id=sid, secret=secret))
        closed = time.monotonic()
        # The next keepalive (within T/4) is answered SESSION_EXPIRED.
        wait_for(lambda: S.LOST in log.states(), 5, "LOST")
        lost = log.when(S.LOST)
        assert lost is not None and lost - closed < 10.0 / 4 + 1.0
        assert S.SUSPENDED not in log.states()
        # Operations that need no session go on without one.
        assert client.get("/")[1] is not None
        assert client.session_id is None
    finally:
        client.close()
