"""A Python client generated from Grove's .proto files (grpcio-tools) against a real server.

Usage: smoke.py HOST:PORT

Creates a node, reads it, fails a compare-and-set with a stale version (reading the typed
ErrorCode from the status details), and watches the node to see a change arrive.
"""
import os
import queue
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "gen"))

import grpc  # noqa: E402
from grpc_status import rpc_status  # noqa: E402

from grove.v1 import nodes_pb2, nodes_pb2_grpc, types_pb2, watch_pb2, watch_pb2_grpc  # noqa: E402


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


if __name__ == "__main__":
    main()
