"""The values the client hands out: stats, session states, watch events."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Optional


class SessionState(str, enum.Enum):
    """The life of the client's session, as a state listener sees it (Curator's states).

    CONNECTED: a session was opened. SUSPENDED: keepalives are not being confirmed (the stream
    broke, a server refused, or a third of the timeout passed); the session may still be
    alive. RECONNECTED: confirmed again, possibly through another server. LOST: the session is
    gone for this client (0.89 of the timeout after the send time of the last confirmed
    keepalive, or a server said it expired); everything it held is released. CLOSED: the
    client was closed.
    """

    CONNECTED = "CONNECTED"
    SUSPENDED = "SUSPENDED"
    RECONNECTED = "RECONNECTED"
    LOST = "LOST"
    CLOSED = "CLOSED"


class EventType(str, enum.Enum):
    """What changed (kazoo's names)."""

    CREATED = "CREATED"
    DELETED = "DELETED"
    CHANGED = "CHANGED"
    CHILD = "CHILD"


class WatchKind(enum.IntEnum):
    """What a watch covers (`grove.v1.WatchKind`)."""

    #: The node: created, deleted, data changed.
    NODE = 1
    #: The node's children (and the node's deletion).
    CHILDREN = 2
    #: Both.
    NODE_AND_CHILDREN = 3
    #: The node and every descendant: created, deleted, data changed.
    SUBTREE = 4


class Consistency(enum.IntEnum):
    """How fresh a read must be (`grove.v1.Consistency`)."""

    #: Confirmed with a quorum: never stale. The default.
    LINEARIZABLE = 0
    #: The answering server's state as it is (ZooKeeper's default); with `min_zxid` it is
    #: never older than what this client has already seen.
    SEQUENTIAL = 1


class CreateMode(enum.IntEnum):
    """`grove.v1.CreateMode`, ZooKeeper's numbers."""

    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6


@dataclass(frozen=True)
class ZnodeStat:
    """ZooKeeper's stat, with ZooKeeper's field names. Times are milliseconds since the epoch.

    `mode` and `ttl` (ms) are Grove's additions: how the node was created. A TTL or container
    node has `ephemeral_owner` 0, unlike ZooKeeper's encoded values.
    """

    czxid: int
    mzxid: int
    pzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeral_owner: int
    data_length: int
    num_children: int
    mode: CreateMode = CreateMode.PERSISTENT
    ttl: int = 0

    @classmethod
    def from_proto(cls, s: Any) -> "ZnodeStat":
        try:
            mode = CreateMode(s.mode)
        except ValueError:
            mode = CreateMode.PERSISTENT
        return cls(
            czxid=s.czxid,
            mzxid=s.mzxid,
            pzxid=s.pzxid,
            ctime=s.ctime,
            mtime=s.mtime,
            version=s.version,
            cversion=s.cversion,
            aversion=s.aversion,
            ephemeral_owner=s.ephemeral_owner,
            data_length=s.data_length,
            num_children=s.num_children,
            mode=mode,
            ttl=s.ttl_ms,
        )

    # kazoo's convenience names.
    @property
    def created(self) -> float:
        """ctime in seconds."""
        return self.ctime / 1000.0

    @property
    def last_modified(self) -> float:
        """mtime in seconds."""
        return self.mtime / 1000.0

    @property
    def children_count(self) -> int:
        return self.num_children

    @property
    def owner_session_id(self) -> Optional[int]:
        return self.ephemeral_owner or None


@dataclass(frozen=True)
class WatchEvent:
    """One change seen by a watch, in zxid order.

    `stat` is the node's stat after the change (its last stat for DELETED; the parent's new
    stat for CHILD). `data` is set for CREATED and CHANGED when the watch asked for data.
    """

    type: EventType
    path: str
    zxid: int
    stat: Optional[ZnodeStat]
    data: Optional[bytes] = None


@dataclass(frozen=True)
class WatchedEvent:
    """What a one-shot watch callback (`get(path, watch=fn)`) receives, as in kazoo."""

    type: EventType
    state: SessionState
    path: str
    zxid: int = 0


@dataclass(frozen=True)
class LockEntry:
    """One holder or waiter of a lock, semaphore or election, in line order."""

    node: str
    kind: str
    granted: bool
    token: int
    session_id: int
    owner: str
    holds: int
    data: bytes


@dataclass(frozen=True)
class LeaderInfo:
    """An election's current leader."""

    node: str
    value: bytes
    token: int
    session_id: int
