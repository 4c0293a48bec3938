"""Grove's errors: one exception class per `grove.v1.ErrorCode`, all subclasses of `GroveError`.

A failed call carries its code in a `grove.v1.ErrorDetail` inside the `grpc-status-details-bin`
trailer (a `google.rpc.Status`), and the code's name in the `grove-error-code` trailer; the
details are read first, the trailer is the fallback. A failure with neither comes from the
transport: `ConnectionLossError` when the request may have reached a server.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Optional, Type

import grpc


class ErrorCode(enum.IntEnum):
    """`grove.v1.ErrorCode`, with the proto's numbers (tests check they match)."""

    OK = 0
    NO_NODE = 1
    NODE_EXISTS = 2
    BAD_VERSION = 3
    NOT_EMPTY = 4
    NO_CHILDREN_FOR_EPHEMERALS = 5
    BAD_ARGUMENTS = 6
    SESSION_EXPIRED = 7
    UNKNOWN_SESSION = 8
    NO_AUTH = 9
    AUTH_FAILED = 10
    QUOTA_EXCEEDED = 11
    TOO_MANY_REQUESTS = 12
    NO_QUORUM = 13
    NOT_READY = 14
    COMPACTED = 15
    LOCK_TIMEOUT = 16
    RUNTIME_INCONSISTENCY = 17
    SEQUENCE_OVERFLOW = 18
    SLOW_CONSUMER = 19
    INTERNAL = 20
    TOO_LARGE = 21
    FENCED = 22
    INVALID_ACL = 23
    TOO_MANY_WATCHES = 24
    UNIMPLEMENTED_FEATURE = 25


class GroveError(Exception):
    """A failed Grove operation.

    `code` is the server's `ErrorCode` (None for failures decided by the client, such as a
    lost connection); `path` is the node the error is about, when there is one; `message`
    is the server's (or the client's) explanation.
    """

    #: The code instances of this class carry (subclasses set it).
    default_code: Optional[ErrorCode] = None

    def __init__(
        self,
        message: str = "",
        *,
        path: str = "",
        code: Optional[ErrorCode] = None,
        grpc_code: Optional[grpc.StatusCode] = None,
        detail: object = None,
    ) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message
        self.path = path
        self.code: Optional[ErrorCode] = code if code is not None else self.default_code
        #: The gRPC status code of the failed call (None when no call failed).
        self.grpc_code = grpc_code
        #: The decoded `grove.v1.ErrorDetail`, when the server sent one.
        self.detail = detail

    def __str__(self) -> str:
        return self.message or self.__class__.__name__


class NoNodeError(GroveError):
    default_code = ErrorCode.NO_NODE


class NodeExistsError(GroveError):
    default_code = ErrorCode.NODE_EXISTS


class BadVersionError(GroveError):
    default_code = ErrorCode.BAD_VERSION

    @property
    def actual_version(self) -> Optional[int]:
        """The version the node has, when the server said."""
        return getattr(self.detail, "actual_version", None) if self.detail is not None else None


class NotEmptyError(GroveError):
    default_code = ErrorCode.NOT_EMPTY


class NoChildrenForEphemeralsError(GroveError):
    default_code = ErrorCode.NO_CHILDREN_FOR_EPHEMERALS


class BadArgumentsError(GroveError, ValueError):
    """An invalid path, mode, size or argument (raised by the server, or by the client before
    sending anything)."""

    default_code = ErrorCode.BAD_ARGUMENTS


class SessionExpiredError(GroveError):
    """The session is gone: expired or closed on the servers, or LOST by the client's own
    timer. Handles bound to it (locks, leases, leaderships) are no longer held."""

    default_code = ErrorCode.SESSION_EXPIRED


class UnknownSessionError(SessionExpiredError):
    """The server does not know the session (never opened, or already forgotten)."""

    default_code = ErrorCode.UNKNOWN_SESSION


class NoAuthError(GroveError):
    """The node's ACL does not grant the caller's identities the permission."""

    default_code = ErrorCode.NO_AUTH


class AuthFailedError(GroveError):
    default_code = ErrorCode.AUTH_FAILED


class QuotaExceededError(GroveError):
    default_code = ErrorCode.QUOTA_EXCEEDED


class TooManyRequestsError(GroveError):
    """A server limit refused the request; `retry_after` says how long to wait (seconds)."""

    default_code = ErrorCode.TOO_MANY_REQUESTS

    @property
    def retry_after(self) -> Optional[float]:
        ms = getattr(self.detail, "retry_after_ms", 0) if self.detail is not None else 0
        return ms / 1000.0 if ms else None


class NoQuorumError(GroveError):
    """The server is not in contact with a quorum (retried on other servers first)."""

    default_code = ErrorCode.NO_QUORUM


class NotReadyError(GroveError):
    """The server knows no leader or has not caught up (retried on other servers first)."""

    default_code = ErrorCode.NOT_READY


class CompactedError(GroveError):
    """A watch could not resume: the server's history no longer reaches back to the zxid it
    needed. `oldest_zxid` is the oldest zxid a watch can still start from."""

    default_code = ErrorCode.COMPACTED

    def __init__(self, message: str = "", *, oldest_zxid: int = 0, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        detail_oldest = getattr(self.detail, "oldest_zxid", 0) if self.detail is not None else 0
        self.oldest_zxid: int = oldest_zxid or detail_oldest


class LockTimeoutError(GroveError):
    """A lock, lease or leadership was not granted within the wait asked for."""

    default_code = ErrorCode.LOCK_TIMEOUT


class RuntimeInconsistencyError(GroveError):
    """An operation of a failed transaction after the one that failed (not attempted)."""

    default_code = ErrorCode.RUNTIME_INCONSISTENCY


class SequenceOverflowError(GroveError):
    default_code = ErrorCode.SEQUENCE_OVERFLOW


class SlowConsumerError(GroveError):
    """A watch fell too far behind and was cancelled (by the server, or by the client when its
    own queue of undelivered events was full)."""

    default_code = ErrorCode.SLOW_CONSUMER


class InternalError(GroveError):
    default_code = ErrorCode.INTERNAL


class TooLargeError(GroveError):
    default_code = ErrorCode.TOO_LARGE


class FencedError(GroveError):
    """A fencing token is not (or no longer) the current grant of its lock."""

    default_code = ErrorCode.FENCED


class InvalidACLError(GroveError):
    default_code = ErrorCode.INVALID_ACL


class TooManyWatchesError(GroveError):
    default_code = ErrorCode.TOO_MANY_WATCHES


class UnimplementedError(GroveError):
    default_code = ErrorCode.UNIMPLEMENTED_FEATURE


class RolledBackError(GroveError):
    """An operation of a failed transaction before the one that failed: it was valid, but
    nothing of the transaction was applied (kazoo's RolledBackError)."""

    default_code = ErrorCode.OK


class ConnectionLossError(GroveError):
    """No answer within the request timeout: for a write, the outcome is unknown (it was sent
    with a request id and retried, so it was applied at most once)."""


class ClientClosedError(GroveError):
    """The client was closed."""


_BY_CODE: Dict[ErrorCode, Type[GroveError]] = {
    cls.default_code: cls
    for cls in (
        NoNodeError,
        NodeExistsError,
        BadVersionError,
        NotEmptyError,
        NoChildrenForEphemeralsError,
        BadArgumentsError,
        SessionExpiredError,
        UnknownSessionError,
        NoAuthError,
        AuthFailedError,
        QuotaExceededError,
        TooManyRequestsError,
        NoQuorumError,
        NotReadyError,
        CompactedError,
        LockTimeoutError,
        RuntimeInconsistencyError,
        SequenceOverflowError,
        SlowConsumerError,
        InternalError,
        TooLargeError,
        FencedError,
        InvalidACLError,
        TooManyWatchesError,
        UnimplementedError,
        RolledBackError,
    )
    if cls.default_code is not None
}


def error_class(code: int) -> Type[GroveError]:
    """The exception class of a Grove error code (GroveError for a code this client does not
    know, e.g. from a newer server)."""
    try:
        return _BY_CODE[ErrorCode(code)]
    except ValueError:
        return GroveError


def from_code(code: int, message: str = "", path: str = "", detail: object = None) -> GroveError:
    cls = error_class(code)
    known = code in ErrorCode._value2member_map_
    return cls(
        message or (ErrorCode(code).name if known else f"error code {code}"),
        path=path,
        code=ErrorCode(code) if known else None,
        detail=detail,
    )


_DETAIL_TYPE_URL = "type.googleapis.com/grove.v1.ErrorDetail"

# Transport failures that mean the request never left this process: nothing to be unsure of.
_NEVER_SENT_SIGNS = (
    "failed to connect",
    "connection refused",
    "connect failed",
    "dns resolution failed",
    "name resolution",
)


def from_rpc_error(err: grpc.RpcError) -> GroveError:
    """The GroveError a failed gRPC call carries."""
    code_fn = getattr(err, "code", None)
    grpc_code = code_fn() if callable(code_fn) else grpc.StatusCode.UNKNOWN
    details_fn = getattr(err, "details", None)
    message = (details_fn() if callable(details_fn) else None) or ""
    trailers_fn = getattr(err, "trailing_metadata", None)
    trailers = (trailers_fn() if callable(trailers_fn) else None) or ()
    detail: Any = None
    code_name = None
    for key, value in trailers:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            detail = _decode_detail(value)
        elif key == "grove-error-code":
            code_name = value.decode() if isinstance(value, bytes) else str(value)
    if detail is not None:
        e = from_code(detail.code, message, detail.path, detail)
    elif code_name is not None and code_name in ErrorCode.__members__:
        e = from_code(ErrorCode[code_name], message)
    else:
        e = _transport_error(grpc_code, message)
    e.grpc_code = grpc_code
    return e


def _decode_detail(raw: bytes) -> Any:
    from . import _proto

    try:
        status = _proto.RpcStatus.FromString(raw)
    except Exception:
        return None
    for any_ in status.details:
        if any_.type_url == _DETAIL_TYPE_URL:
            try:
                return _proto.types_pb2.ErrorDetail.FromString(any_.value)
            except Exception:
                return None
    return None


class _TransportFailure(ConnectionLossError):
    """A failure of the connection (no Grove code): the request may or may not have been
    applied, unless `never_sent`."""

    def __init__(self, message: str, never_sent: bool) -> None:
        super().__init__(message)
        self.never_sent = never_sent


def _transport_error(grpc_code: grpc.StatusCode, message: str) -> GroveError:
    text = f"{grpc_code.name}: {message}" if message else grpc_code.name
    if grpc_code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
                     grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED):
        lowered = message.lower()
        return _TransportFailure(text, never_sent=any(s in lowered for s in _NEVER_SENT_SIGNS))
    if grpc_code == grpc.StatusCode.UNAUTHENTICATED:
        return AuthFailedError(text)
    if grpc_code == grpc.StatusCode.PERMISSION_DENIED:
        return NoAuthError(text)
    if grpc_code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        return BadArgumentsError(text)
    if grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return TooManyRequestsError(text)
    if grpc_code == grpc.StatusCode.UNIMPLEMENTED:
        return UnimplementedError(text)
    return InternalError(text)


def is_retryable(e: GroveError) -> bool:
    """True for failures that say nothing about the request itself: the server could not
    serve it (UNAVAILABLE: no quorum, not ready, unreachable) or its answer was lost. Such a
    request is sent again, to the next server, with the same request id."""
    return isinstance(e, (NoQuorumError, NotReadyError, _TransportFailure))


def never_sent(e: GroveError) -> bool:
    """True if the failed attempt cannot have been applied: the connection was never made.
    (A server's NOT_READY or NO_QUORUM does not prove it: the write may have been forwarded
    or proposed before the server gave up waiting.)"""
    return isinstance(e, _TransportFailure) and e.never_sent
