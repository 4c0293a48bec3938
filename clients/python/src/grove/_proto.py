"""The generated stubs (made from proto/ when the package was built; see setup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    from .v1 import (  # noqa: F401
        cluster_pb2,
        cluster_pb2_grpc,
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
except ImportError as e:  # pragma: no cover - a source checkout that was never built
    raise ImportError(
        "grove's gRPC stubs are missing: they are generated from the repository's proto/ when the "
        "package is built. Install it with `pip install ./clients/python` (or `pip install -e "
        f"./clients/python`) from the Grove repository root. ({e})"
    ) from e

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def _load_rpc_status() -> Any:
    """google.rpc.Status from the descriptor set built from proto/google/rpc/status.proto,
    in a private pool: the default pool may hold googleapis-common-protos' own copy."""
    raw = (Path(__file__).resolve().parent / "rpc_status.binpb").read_bytes()
    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(raw).file:
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


RpcStatus = _load_rpc_status()

__all__ = [
    "RpcStatus",
    "cluster_pb2",
    "cluster_pb2_grpc",
    "locks_pb2",
    "locks_pb2_grpc",
    "nodes_pb2",
    "nodes_pb2_grpc",
    "sessions_pb2",
    "sessions_pb2_grpc",
    "types_pb2",
    "watch_pb2",
    "watch_pb2_grpc",
]
