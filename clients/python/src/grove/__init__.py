"""grove: the Python client of Grove, a ZooKeeper-like coordination service over gRPC.

    from grove import Client

    with Client("127.0.0.1:7181,127.0.0.1:7182/app", timeout=10.0) as client:
        client.create("/config", b"v1", makepath=True)
        data, stat = client.get("/config")
        with client.lock("/locks/deploy") as token:
            ...

The asyncio API is grove.aio (AsyncClient), with the same verbs.
"""

from .aio.client import AsyncClient
from .client import Client, Transaction, Watch
from .errors import (
    AuthFailedError,
    BadArgumentsError,
    BadVersionError,
    ClientClosedError,
    CompactedError,
    ConnectionLossError,
    ErrorCode,
    FencedError,
    GroveError,
    InternalError,
    InvalidACLError,
    LockTimeoutError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NoQuorumError,
    NotEmptyError,
    NotReadyError,
    QuotaExceededError,
    RolledBackError,
    RuntimeInconsistencyError,
    SequenceOverflowError,
    SessionExpiredError,
    SlowConsumerError,
    TooLargeError,
    TooManyRequestsError,
    TooManyWatchesError,
    UnimplementedError,
    UnknownSessionError,
)
from .model import (
    Consistency,
    CreateMode,
    EventType,
    LeaderInfo,
    LockEntry,
    SessionState,
    WatchedEvent,
    WatchEvent,
    WatchKind,
    ZnodeStat,
)
from .recipes import ChildrenWatch, DataWatch, Election, Lock, ReadLock, Semaphore, WriteLock
from .security import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    Permissions,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
)

__version__ = "0.1.0"

__all__ = [
    "ACL",
    "AsyncClient",
    "AuthFailedError",
    "BadArgumentsError",
    "BadVersionError",
    "CREATOR_ALL_ACL",
    "ChildrenWatch",
    "Client",
    "ClientClosedError",
    "CompactedError",
    "ConnectionLossError",
    "Consistency",
    "CreateMode",
    "DataWatch",
    "Election",
    "ErrorCode",
    "EventType",
    "FencedError",
    "GroveError",
    "Id",
    "InternalError",
    "InvalidACLError",
    "LeaderInfo",
    "Lock",
    "LockEntry",
    "LockTimeoutError",
    "NoAuthError",
    "NoChildrenForEphemeralsError",
    "NoNodeError",
    "NoQuorumError",
    "NodeExistsError",
    "NotEmptyError",
    "NotReadyError",
    "OPEN_ACL_UNSAFE",
    "Permissions",
    "QuotaExceededError",
    "READ_ACL_UNSAFE",
    "ReadLock",
    "RolledBackError",
    "RuntimeInconsistencyError",
    "Semaphore",
    "SequenceOverflowError",
    "SessionExpiredError",
    "SessionState",
    "SlowConsumerError",
    "TooLargeError",
    "TooManyRequestsError",
    "TooManyWatchesError",
    "Transaction",
    "UnimplementedError",
    "UnknownSessionError",
    "Watch",
    "WatchEvent",
    "WatchKind",
    "WatchedEvent",
    "WriteLock",
    "ZnodeStat",
    "make_acl",
    "make_digest_acl",
    "make_digest_acl_credential",
]
