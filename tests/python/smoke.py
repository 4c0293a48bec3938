"""A Python client generated from Grove's .proto files (grpcio-tools) against a real server.

Usage: smoke.py HOST:PORT

Creates a node, reads it, fails a compare-and-set with a stale version (reading the typed
ErrorCode from the status details), watches the node to see a change arrive, and takes a lock
with its fencing token under a session.
"""
import os
import queue
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "gen"))

import grpc  # noqa: E402
from grpc_status import rpc_status  # noqa: E402

from grove.v1 import (  # noqa: E402
    locks_pb2,
    locks_pb2_grpc,
    nodes_pb2,
    nodes_pb2_grpc,
    sessions_pb2,
    sessions_pb2_grpc,
    types_pb2,
    watch_pb2,
    watch_pb2_grpc,
)


def error_code(err: grpc.RpcError) -> str:
    """The Grove ErrorCode name carried in google.rpc.Status details."""
    status = rpc_status.from_call(err)
    for detail in status.details:
        info = types_pb2.ErrorDetail()
        if detail.Unpack(info):
            return types_pb2.ErrorCode.Name(info.code)
    return "NONE"


def main() -> None:
    target = sys.argv[1]
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=10)
    nodes = nodes_pb2_grpc.NodesStub(channel)

    created = nodes.Create(nodes_pb2.CreateRequest(path="/py", data=b"hello"), timeout=10)
    print("created", created.path)
    got = nodes.Get(nodes_pb2.GetRequest(path="/py"), timeout=10)
    print("got", got.data.decode(), "version", got.stat.version)

    try:
        nodes.Set(nodes_pb2.SetRequest(path="/py", data=b"x", version=got.stat.version + 5), timeout=10)
        raise SystemExit("a stale version was accepted")
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.code()
        print("stale version:", error_code(err))

    # Watch from the zxid after the read, then change the node.
    events: "queue.Queue[watch_pb2.WatchResponse]" = queue.Queue()
    requests: "queue.Queue[watch_pb2.WatchRequest]" = queue.Queue()
    requests.put(
        watch_pb2.WatchRequest(
            create=watch_pb2.WatchCreateRequest(
                watch_id=1, path="/py", kind=watch_pb2.NODE, start_zxid=got.header.zxid + 1, include_data=True
            )
        )
    )
    watch = watch_pb2_grpc.WatchStub(channel)
    call = watch.Watch(iter(requests.get, None), timeout=20)

    def read() -> None:
        try:
            for resp in call:
                events.put(resp)
        except grpc.RpcError:
            pass

    threading.Thread(target=read, daemon=True).start()
    first = events.get(timeout=10)
    assert first.created, first
    nodes.Set(nodes_pb2.SetRequest(path="/py", data=b"changed", version=got.stat.version), timeout=10)
    while True:
        resp = events.get(timeout=10)
        if resp.events:
            ev = resp.events[0]
            print("watch event:", watch_pb2.EventType.Name(ev.type), ev.path, ev.data.decode())
            break
    call.cancel()
    requests.put(None)

    # A lock needs a session: its holder node is ephemeral, so a crashed holder releases it.
    sessions = sessions_pb2_grpc.SessionsStub(channel)
    session = sessions.Open(sessions_pb2.OpenSessionRequest(timeout_ms=10000), timeout=10)
    md = (("grove-session-id", str(session.session_id)), ("grove-session-secret", session.secret.hex()))
    locks = locks_pb2_grpc.LocksStub(channel)
    grant = locks.Acquire(
        locks_pb2.AcquireRequest(paths=["/locks/py"], kind=locks_pb2.MUTEX, timeout_ms=5000), metadata=md, timeout=10
    )
    print("lock token:", grant.token, "node:", grant.nodes[0])
    released = locks.Release(locks_pb2.ReleaseRequest(node=grant.nodes[0]), metadata=md, timeout=10)
    print("released:", released.released)
    sessions.Close(sessions_pb2.CloseSessionRequest(session_id=session.session_id, secret=session.secret), timeout=10)


if __name__ == "__main__":
    main()
