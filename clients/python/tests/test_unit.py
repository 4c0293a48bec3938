"""What needs no server: the generated stubs, error decoding, connect strings, request ids,
argument checks, and the session-state rule's arithmetic."""

from __future__ import annotations

import re
import time
from typing import Any, List, Tuple

import grpc
import pytest

import grove
from grove import _proto as pb
from grove._connect import new_request_id, parse_hosts
from grove.aio._session import keepalive_every, lost_after, suspended_after
from grove.aio.client import create_mode
from grove.errors import ErrorCode, from_rpc_error, is_retryable, never_sent
from grove.model import CreateMode


def test_stubs_are_generated_from_the_repository_protos() -> None:
    # Every ErrorCode of the proto has its exception class, with the same number.
    assert dict(pb.types_pb2.ErrorCode.items()) == {e.name: e.value for e in ErrorCode}
    for name, value in pb.types_pb2.ErrorCode.items():
        cls = grove.errors.error_class(value)
        assert issubclass(cls, grove.GroveError)
        if name != "OK":
            assert cls.default_code == value, name
    assert dict(pb.types_pb2.CreateMode.items()) == {m.name: m.value for m in CreateMode}
    assert dict(pb.watch_pb2.WatchKind.items())["SUBTREE"] == grove.WatchKind.SUBTREE
    # google.rpc.Status lives in a private pool: importing grpcio-status's copy too is fine.
    status = pb.RpcStatus(code=5, message="m")
    assert pb.RpcStatus.FromString(status.SerializeToString()).message == "m"


class FakeError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailers: List[Tuple[str, Any]]) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> List[Tuple[str, Any]]:
        return self._trailers


def status_bin(code: int, path: str = "", **fields: Any) -> bytes:
    detail = pb.types_pb2.ErrorDetail(code=code, path=path, **fields)
    st = pb.RpcStatus(code=9, message="m")
    any_ = st.details.add()
    any_.type_url = "type.googleapis.com/grove.v1.ErrorDetail"
    any_.value = detail.SerializeToString()
    return st.SerializeToString()


def test_errors_decode_the_status_details_first_then_the_trailer() -> None:
    e = from_rpc_error(
        FakeError(
            grpc.StatusCode.FAILED_PRECONDITION,
            "version mismatch on /a",
            [("grpc-status-details-bin", status_bin(ErrorCode.BAD_VERSION, "/a", actual_version=4)),
             ("grove-error-code", "NOT_EMPTY")],
        )
    )
    assert isinstance(e, grove.BadVersionError)
    assert (e.code, e.path, e.message, e.actual_version) == (ErrorCode.BAD_VERSION, "/a", "version mismatch on /a", 4)
    assert e.grpc_code == grpc.StatusCode.FAILED_PRECONDITION

    e = from_rpc_error(FakeError(grpc.StatusCode.NOT_FOUND, "gone", [("grove-error-code", "NO_NODE")]))
    assert isinstance(e, grove.NoNodeError) and e.code == ErrorCode.NO_NODE and e.message == "gone"

    e = from_rpc_error(
        FakeError(grpc.StatusCode.OUT_OF_RANGE, "old", [("grpc-status-details-bin", status_bin(15, oldest_zxid=77))])
    )
    assert isinstance(e, grove.CompactedError) and e.oldest_zxid == 77

    # A code from a newer server: still a GroveError.
    e = from_rpc_error(FakeError(grpc.StatusCode.INTERNAL, "?", [("grpc-status-details-bin", status_bin(99))]))
    assert type(e) is grove.GroveError

    # No Grove code: the transport. Refused connections were never sent.
    refused = from_rpc_error(FakeError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", []))
    lost = from_rpc_error(FakeError(grpc.StatusCode.UNAVAILABLE, "Socket closed", []))
    assert isinstance(refused, grove.ConnectionLossError) and isinstance(lost, grove.ConnectionLossError)
    assert never_sent(refused) and not never_sent(lost)
    assert is_retryable(refused) and is_retryable(lost)
    quorum = from_rpc_error(FakeError(grpc.StatusCode.UNAVAILABLE, "q", [("grove-error-code", "NO_QUORUM")]))
    assert isinstance(quorum, grove.NoQuorumError) and is_retryable(quorum) and not never_sent(quorum)
    assert not is_retryable(grove.NoNodeError("x"))


def test_connect_strings() -> None:
    assert parse_hosts("a:1,b:2/app/x") == (["a:1", "b:2"], "/app/x")
    assert parse_hosts("localhost") == (["localhost:7181"], None)
    assert parse_hosts("a:1/") == (["a:1"], None)
    assert parse_hosts("[::1]:9,[::1]") == (["[::1]:9", "[::1]:7181"], None)
    for bad in ["", "/app", "a:1/x//y", "::1"]:
        with pytest.raises(grove.BadArgumentsError):
            parse_hosts(bad)


def test_request_ids_carry_the_clock_then_random_bits() -> None:
    before = int(time.time() * 1000)
    ids = {new_request_id() for _ in range(100)}
    after = int(time.time() * 1000)
    assert len(ids) == 100
    for rid in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", rid)
        assert before <= int(rid[:16], 16) <= after
        assert int(rid[16:], 16) != 0


def test_create_modes_and_bad_combinations() -> None:
    assert create_mode(False, False, False, None) == CreateMode.PERSISTENT
    assert create_mode(True, True, False, None) == CreateMode.EPHEMERAL_SEQUENTIAL
    assert create_mode(False, False, True, None) == CreateMode.CONTAINER
    assert create_mode(False, True, False, 500) == CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL
    for args in [(True, False, False, 500), (False, False, True, 500), (True, False, True, None), (False, False, False, 0)]:
        with pytest.raises(grove.BadArgumentsError):
            create_mode(*args)
    # BadArgumentsError is also a ValueError.
    assert issubclass(grove.BadArgumentsError, ValueError)


def test_the_session_state_rule_arithmetic() -> None:
    T = 10.0
    assert keepalive_every(T) == pytest.approx(2.5)
    assert suspended_after(T) == pytest.approx(10 / 3)
    # T(1 - rho) - delta with rho = 0.01, delta = T/10.
    assert lost_after(T) == pytest.approx(8.9)


def test_acls() -> None:
    assert grove.make_digest_acl_credential("super", "test") == "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
    acl = grove.make_digest_acl("alice", "pw", read=True, write=True)
    assert acl.perms == grove.Permissions.READ | grove.Permissions.WRITE and acl.id.scheme == "digest"
    assert grove.OPEN_ACL_UNSAFE[0].acl_list == ["ALL"]
