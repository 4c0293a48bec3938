"""The asyncio client: the engine both APIs run on.

Requests go to the current server; one that cannot serve them (UNAVAILABLE: no quorum, not
ready, unreachable) or whose answer was lost is left for the next, with the same request
id, until the request timeout. Every write carries a `grove-request-id` and the servers
apply an id once, so only when the timeout passes is a write reported as ConnectionLossError
(outcome unknown). Every zxid seen (response headers, watch events) is remembered and sent as
`min_zxid` on reads, so a client that moves between servers reads its own writes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import grpc

from .. import _proto as pb
from .._connect import TLSConfig, backoff, make_channel, new_request_id, parse_hosts
from ..errors import (
    BadArgumentsError,
    ClientClosedError,
    ConnectionLossError,
    GroveError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    SessionExpiredError,
    from_rpc_error,
    is_retryable,
    never_sent,
)
from ..model import (
    Consistency,
    CreateMode,
    SessionState,
    WatchedEvent,
    WatchKind,
    ZnodeStat,
)
from ..security import ACL, Id
from ._session import Session, SessionKeeper
from ._watch import AsyncWatch, WatchHub

if TYPE_CHECKING:
    from .recipes import AsyncElection, AsyncLock, AsyncSemaphore
    from .transaction import AsyncTransaction

log = logging.getLogger("grove")

T = TypeVar("T")

#: Listener of session states: called in the event loop, must not block; a coroutine it
#: returns is run as a task.
StateListener = Callable[[SessionState], Any]

# How a call uses the session: OPTIONAL sends it when there is one, REQUIRED opens one if
# needed (ephemeral nodes, locks), NONE never sends it; a Session object binds the call to
# that session (a lock's release).
OPTIONAL = "optional"
REQUIRED = "required"
NONE = "none"
SessionUse = Union[str, Session]


class Server:
    """One server: its channel and stubs."""

    def __init__(self, address: str, tls: Optional[TLSConfig]) -> None:
        self.address = address
        self.channel = make_channel(address, tls)
        # The generated *_grpc.py modules have no type annotations.
        self.nodes: Any = pb.nodes_pb2_grpc.NodesStub(self.channel)  # type: ignore[no-untyped-call]
        self.sessions: Any = pb.sessions_pb2_grpc.SessionsStub(self.channel)  # type: ignore[no-untyped-call]
        self.watch: Any = pb.watch_pb2_grpc.WatchStub(self.channel)  # type: ignore[no-untyped-call]
        self.locks: Any = pb.locks_pb2_grpc.LocksStub(self.channel)  # type: ignore[no-untyped-call]
        self.election: Any = pb.locks_pb2_grpc.ElectionStub(self.channel)  # type: ignore[no-untyped-call]
        self.cluster: Any = pb.cluster_pb2_grpc.ClusterStub(self.channel)  # type: ignore[no-untyped-call]


def _bytes(value: Any, what: str = "value") -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def _version(version: int) -> Optional[int]:
    """kazoo's -1 (any version) is an absent version on the wire; other negative versions go
    to the server, which rejects them."""
    return None if version == -1 else version


def create_mode(ephemeral: bool, sequence: bool, container: bool, ttl: Optional[int]) -> CreateMode:
    if ttl is not None:
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
            raise BadArgumentsError(f"ttl is a positive number of milliseconds, not {ttl!r}")
        if ephemeral or container:
            raise BadArgumentsError("a TTL node is persistent: ttl cannot be combined with ephemeral or container")
        return CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL if sequence else CreateMode.PERSISTENT_WITH_TTL
    if container:
        if ephemeral or sequence:
            raise BadArgumentsError("a container node cannot be ephemeral or sequential")
        return CreateMode.CONTAINER
    if ephemeral:
        return CreateMode.EPHEMERAL_SEQUENTIAL if sequence else CreateMode.EPHEMERAL
    return CreateMode.PERSISTENT_SEQUENTIAL if sequence else CreateMode.PERSISTENT


def acl_to_pb(acl: Optional[Sequence[ACL]]) -> List[Any]:
    return [pb.types_pb2.Acl(perms=a.perms, scheme=a.id.scheme, id=a.id.id) for a in (acl or ())]


def acl_from_pb(acl: Iterable[Any]) -> List[ACL]:
    return [ACL(a.perms, Id(a.scheme, a.id)) for a in acl]


class AsyncClient:
    """A Grove client for asyncio (kazoo's verbs, awaitable).

    `hosts` is `host:port[,host:port...][/chroot]`; `timeout` the session timeout asked for,
    in seconds (the servers clamp it; `session_timeout` is what they granted);
    `request_timeout` bounds each call, retries included. `auth_data` is kazoo's list of
    `("digest", "user:password")` pairs, sent with every request as `grove-auth` metadata (use
    TLS). TLS: `ca`, `certfile`, `keyfile`, `server_name` (or `use_tls=True` for the system's
    roots).

    Create it inside a running event loop; `await client.start()` (or `async with`) opens the
    session and keeps it alive in the background.
    """

    def __init__(
        self,
        hosts: str = "127.0.0.1:7181",
        timeout: float = 10.0,
        *,
        request_timeout: float = 10.0,
        auth_data: Optional[Iterable[Union[Tuple[str, str], str]]] = None,
        read_consistency: Consistency = Consistency.LINEARIZABLE,
        use_tls: bool = False,
        ca: Optional[str] = None,
        certfile: Optional[str] = None,
        keyfile: Optional[str] = None,
        server_name: Optional[str] = None,
        max_watch_queue: int = 10_000,
    ) -> None:
        self._servers_addr, self.chroot = parse_hosts(hosts)
        self.hosts = hosts
        if timeout <= 0 or request_timeout <= 0:
            raise BadArgumentsError("timeouts must be positive")
        self._requested_timeout = float(timeout)
        self.request_timeout = float(request_timeout)
        self.read_consistency = Consistency(read_consistency)
        self._tls = (
            TLSConfig(ca=ca, certfile=certfile, keyfile=keyfile, server_name=server_name)
            if use_tls or ca or certfile or keyfile
            else None
        )
        self._auth: List[Tuple[str, str]] = []
        for entry in auth_data or ():
            if isinstance(entry, str):
                self.add_auth("digest", entry)
            else:
                self.add_auth(*entry)
        self.max_watch_queue = max_watch_queue
        self._servers: List[Server] = []
        self._current = 0
        self._last_zxid = 0
        self._state: Optional[SessionState] = None
        self._listeners: List[StateListener] = []
        self._session: Optional[Session] = None
        self._session_lock: Optional[asyncio.Lock] = None
        self._closed = False
        self._started = False
        self._watch_hub: Optional[WatchHub] = None
        self._background: "set[asyncio.Task[Any]]" = set()

    # ---- life cycle ----

    async def start(self) -> None:
        """Connects and opens the session (kazoo's start). Raises if no server answers within
        the request timeout."""
        if self._closed:
            raise ClientClosedError("the client is closed")
        if not self._started:
            self._started = True
            self._servers = [Server(a, self._tls) for a in self._servers_addr]
            self._session_lock = asyncio.Lock()
            self._watch_hub = WatchHub(self)
        await self.ensure_session()

    async def stop(self) -> None:
        """Closes the session (its ephemerals go, its locks are released) and the client:
        state CLOSED. Held locks and leaderships are told they are lost first."""
        if self._closed:
            return
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.lost:
            session.end("the client was closed")
            await self._close_session_rpc(session)
        self._set_state(SessionState.CLOSED)
        if self._watch_hub is not None:
            await self._watch_hub.close()
        for t in list(self._background):
            t.cancel()
        for s in self._servers:
            await s.channel.close()

    close = stop

    async def __aenter__(self) -> "AsyncClient":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- state ----

    @property
    def state(self) -> Optional[SessionState]:
        """The session's state (None before start)."""
        return self._state

    @property
    def connected(self) -> bool:
        return self._state in (SessionState.CONNECTED, SessionState.RECONNECTED)

    @property
    def session_id(self) -> Optional[int]:
        s = self._session
        return s.id if s is not None and not s.lost else None

    @property
    def client_id(self) -> Optional[Tuple[int, bytes]]:
        """(session id, secret), as kazoo's client_id."""
        s = self._session
        return (s.id, s.secret) if s is not None and not s.lost else None

    @property
    def session_timeout(self) -> Optional[float]:
        """The negotiated session timeout T, in seconds."""
        s = self._session
        return s.timeout if s is not None else None

    @property
    def last_zxid(self) -> int:
        """The highest zxid this client has seen; reads pass it as min_zxid."""
        return self._last_zxid

    @property
    def server(self) -> str:
        """The server currently in use."""
        return self._servers_addr[self._current % len(self._servers_addr)]

    @property
    def servers(self) -> List[str]:
        return list(self._servers_addr)

    def add_listener(self, listener: StateListener) -> None:
        """Calls `listener(state)` on every transition: CONNECTED, SUSPENDED, RECONNECTED,
        LOST, CLOSED."""
        self._listeners.append(listener)

    def remove_listener(self, listener: StateListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _set_state(self, state: SessionState) -> None:
        if self._state == state or self._state == SessionState.CLOSED:
            return
        self._state = state
        log.debug("session state %s", state.value)
        for listener in list(self._listeners):
            try:
                r = listener(state)
                if inspect.isawaitable(r):
                    self._spawn(r)
            except Exception:
                log.exception("session state listener %r failed", listener)

    def _spawn(self, aw: Awaitable[Any]) -> "asyncio.Task[Any]":
        task = asyncio.ensure_future(aw)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def add_auth(self, scheme: str, credential: str) -> None:
        """Adds credentials to every later request (kazoo's add_auth). Only `digest` with
        `user:password` exists; x509 identities come from the TLS client certificate."""
        if scheme != "digest":
            raise BadArgumentsError(
                f"auth scheme {scheme!r}: only digest (user:password) is sent; x509 comes from the TLS certificate"
            )
        user, sep, _ = credential.partition(":")
        if not sep or not user:
            raise BadArgumentsError("digest credentials are user:password")
        if not credential.isprintable() or not credential.isascii():
            raise BadArgumentsError("credentials must be printable ASCII")
        if ("grove-auth", f"digest {credential}") not in self._auth:
            self._auth.append(("grove-auth", f"digest {credential}"))

    # ---- sessions ----

    async def ensure_session(self) -> Session:
        """The live session, opening a new one if there is none (after LOST: a new session id,
        state CONNECTED again)."""
        if self._closed:
            raise ClientClosedError("the client is closed")
        if not self._started:
            await self.start()
        s = self._session
        if s is not None and not s.lost:
            return s
        assert self._session_lock is not None
        async with self._session_lock:
            s = self._session
            if s is not None and not s.lost:
                return s
            loop = asyncio.get_running_loop()
            # The leader starts the session's clock when it applies the open, after this.
            sent = loop.time()
            resp = await self._call(
                lambda srv: srv.sessions.Open,
                pb.sessions_pb2.OpenSessionRequest(timeout_ms=int(self._requested_timeout * 1000)),
                write=True,
                session=NONE,
            )
            s = Session(resp.session_id, bytes(resp.secret), resp.timeout_ms / 1000.0, sent)
            if self._closed:
                await self._close_session_rpc(s)
                raise ClientClosedError("the client is closed")
            self._session = s
            s.keeper = SessionKeeper(self, s)
            self._set_state(SessionState.CONNECTED)
            s.keeper.start()
            return s

    def _lose(self, session: Session, reason: str) -> None:
        """LOST: final for this session. Everything it held is told first, then the listeners;
        the servers are asked (best effort) to close it, and the next operation that needs a
        session opens a new one."""
        if session.lost:
            return
        session.end(reason)
        if self._session is session:
            self._session = None
        if self._closed:
            return
        log.info("session 0x%x lost: %s", session.id, reason)
        self._set_state(SessionState.LOST)
        self._spawn(self._close_session_rpc(session))

    async def _close_session_rpc(self, session: Session) -> None:
        """One pass over the servers, without retries: best effort."""
        req = pb.sessions_pb2.CloseSessionRequest(session_id=session.id, secret=session.secret)
        timeout = min(self.request_timeout, 2.0)
        for i in range(len(self._servers)):
            srv = self._servers[(self._current + i) % len(self._servers)]
            try:
                resp = await srv.sessions.Close(req, metadata=tuple(self._auth), timeout=timeout)
                self._saw(resp.header)
                return
            except grpc.aio.AioRpcError as e:
                err = from_rpc_error(e)
                if not is_retryable(err):
                    return  # already expired, or refused: nothing more to do
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - best effort
                return

    # ---- calls ----

    def _saw(self, header: Any) -> None:
        if header is not None and header.zxid > self._last_zxid:
            self._last_zxid = header.zxid

    def saw_zxid(self, zxid: int) -> None:
        if zxid > self._last_zxid:
            self._last_zxid = zxid

    def _metadata(self, session: Optional[Session], request_id: Optional[str]) -> Tuple[Tuple[str, str], ...]:
        md: List[Tuple[str, str]] = []
        if session is not None:
            md.append(("grove-session-id", str(session.id)))
            md.append(("grove-session-secret", session.secret.hex()))
        if request_id is not None:
            md.append(("grove-request-id", request_id))
        md.extend(self._auth)
        return tuple(md)

    def auth_metadata(self) -> Tuple[Tuple[str, str], ...]:
        return tuple(self._auth)

    async def _session_for(self, use: SessionUse) -> Optional[Session]:
        if isinstance(use, Session):
            if use.lost:
                raise SessionExpiredError(f"session 0x{use.id:x} was lost: {use.lost_reason}")
            return use
        if use == REQUIRED:
            return await self.ensure_session()
        if use == OPTIONAL:
            s = self._session
            return s if s is not None and not s.lost else None
        return None

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the client is closed")

    async def _ready(self) -> None:
        self._check_open()
        if not self._started:
            await self.start()

    async def _call(
        self,
        rpc: Callable[[Server], Callable[..., Any]],
        request: Any,
        *,
        write: bool,
        session: SessionUse = OPTIONAL,
        request_id: Optional[str] = None,
    ) -> Any:
        """Calls `rpc` on the current server; retries what may be retried (see the module
        doc) on the next servers, with the same request id, until the request timeout."""
        await self._ready()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        rid = request_id or (new_request_id() if write else None)
        s = await self._session_for(session)
        n = len(self._servers)
        start = self._current
        attempt = 0
        last: Optional[GroveError] = None
        maybe_applied = False
        while True:
            left = deadline - loop.time()
            if left <= 0:
                break
            i = (start + attempt) % n
            try:
                resp = await rpc(self._servers[i])(request, metadata=self._metadata(s, rid), timeout=left)
            except grpc.aio.AioRpcError as e:
                err = from_rpc_error(e)
                if isinstance(err, SessionExpiredError) and s is not None:
                    # The servers ended the session: LOST now (the rule), whoever noticed.
                    self._lose(s, f"a server said: {err.message}")
                    if session != OPTIONAL:
                        raise SessionExpiredError(err.message, path=err.path, code=err.code) from err
                    s = None
                    continue
                if not is_retryable(err):
                    raise err from None
                last = err
                maybe_applied = maybe_applied or not never_sent(err)
                attempt += 1
                if attempt % n == 0:
                    # Every server tried once: pause before the next round.
                    await asyncio.sleep(min(backoff(attempt // n - 1), max(0.0, deadline - loop.time())))
                continue
            if i != self._current:
                self._current = i
            self._saw(getattr(resp, "header", None))
            return resp
        if write and (maybe_applied or last is None):
            raise ConnectionLossError(
                f"no answer within the request timeout ({self.request_timeout:g} s); the write may or may not "
                f"have been applied (request id {rid}, applied at most once). Last error: {last}"
            ) from last
        if last is not None:
            raise last
        raise ConnectionLossError(f"no answer within the request timeout ({self.request_timeout:g} s)")

    async def waiting_call(
        self,
        rpc: Callable[[Server], Callable[..., Any]],
        make_request: Callable[[int], Any],
        *,
        timeout: Optional[float],
        session: Session,
    ) -> Any:
        """Calls an RPC that waits on the server (Acquire, Campaign): not bounded by the
        request timeout. After a failure of the connection or the ensemble it asks the next
        server with the same request id, which finds the same place in line; if that place
        was withdrawn meanwhile (NO_NODE on a retry), it queues afresh. `make_request` gets
        the server-side wait in ms (0: until granted)."""
        await self._ready()
        loop = asyncio.get_running_loop()
        started = loop.time()
        rid = new_request_id()
        retries = 0  # also the offset of the server to ask, from the current one
        n = len(self._servers)
        while True:
            if session.lost:
                raise SessionExpiredError(f"session 0x{session.id:x} was lost: {session.lost_reason}")
            remaining = None if timeout is None else max(0.0, timeout - (loop.time() - started))
            wait_ms = 0 if remaining is None else max(1, int(remaining * 1000))
            grpc_timeout = None if remaining is None else remaining + self.request_timeout
            i = (self._current + retries) % n
            try:
                resp = await rpc(self._servers[i])(
                    make_request(wait_ms), metadata=self._metadata(session, rid), timeout=grpc_timeout
                )
            except grpc.aio.AioRpcError as e:
                err = from_rpc_error(e)
                if isinstance(err, SessionExpiredError):
                    self._lose(session, f"a server said: {err.message}")
                    raise SessionExpiredError(err.message, path=err.path, code=err.code) from err
                if isinstance(err, NoNodeError) and retries > 0:
                    rid = new_request_id()
                    continue
                if not is_retryable(err):
                    raise err from None
                if remaining is not None and loop.time() - started >= timeout + self.request_timeout:  # type: ignore[operator]
                    raise ConnectionLossError(f"no answer in time: {err}") from err
                await asyncio.sleep(backoff(retries))
                retries += 1
                continue
            if i != self._current:
                self._current = i
            self._saw(getattr(resp, "header", None))
            return resp

    # ---- paths ----

    def full_path(self, path: str) -> str:
        """The server-side path of a client path (chroot applied)."""
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {type(path).__name__}")
        if not path.startswith("/"):
            raise BadArgumentsError(f"path {path!r} must be absolute (start with /)", path=path)
        if self.chroot is None:
            return path
        return self.chroot if path == "/" else self.chroot + path

    def client_path(self, path: str) -> str:
        """The client path of a server-side path (chroot removed)."""
        if self.chroot is None:
            return path
        if path == self.chroot:
            return "/"
        if path.startswith(self.chroot + "/"):
            return path[len(self.chroot):]
        return path

    def _read_options(self) -> Tuple[str, int]:
        """The consistency (by name, as the stubs type it) and min_zxid of a read."""
        return self.read_consistency.name, self._last_zxid

    # ---- the verbs ----

    async def create(
        self,
        path: str,
        value: bytes = b"",
        acl: Optional[Sequence[ACL]] = None,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
        container: bool = False,
        ttl: Optional[int] = None,
        include_data: bool = False,
    ) -> Any:
        """Creates a node and returns its path (with the sequence suffix for `sequence`), or
        (path, ZnodeStat) with `include_data`. `ttl` is in milliseconds; `makepath` creates
        missing parents; `acl` defaults to open to everyone."""
        mode = create_mode(ephemeral, sequence, container, ttl)
        req = pb.nodes_pb2.CreateRequest(
            path=self.full_path(path),
            data=_bytes(value),
            mode=mode.name,
            ttl_ms=ttl or 0,
            create_parents=makepath,
            acl=acl_to_pb(acl),
        )
        resp = await self._call(
            lambda s: s.nodes.Create, req, write=True, session=REQUIRED if ephemeral else OPTIONAL
        )
        created = self.client_path(resp.path)
        return (created, ZnodeStat.from_proto(resp.stat)) if include_data else created

    async def ensure_path(self, path: str, acl: Optional[Sequence[ACL]] = None) -> bool:
        """Creates the node and any missing parents, unless it exists."""
        try:
            await self.create(path, b"", acl=acl, makepath=True)
        except NodeExistsError:
            pass
        return True

    async def get(self, path: str, watch: Optional[Callable[[WatchedEvent], Any]] = None) -> Tuple[bytes, ZnodeStat]:
        """The node's data and stat. `watch` is called once, with a WatchedEvent, at the next
        change or deletion after this read (no change between the two is missed)."""
        data, stat, zxid = await self.get_at(path)
        if watch is not None:
            await self._one_shot(path, WatchKind.NODE, zxid, watch)
        return data, stat

    async def get_at(self, path: str) -> Tuple[bytes, ZnodeStat, int]:
        """get, with the zxid the answer reflects (to watch from zxid + 1)."""
        consistency, min_zxid = self._read_options()
        req = pb.nodes_pb2.GetRequest(path=self.full_path(path), consistency=consistency, min_zxid=min_zxid)
        resp = await self._call(lambda s: s.nodes.Get, req, write=False)
        return bytes(resp.data), ZnodeStat.from_proto(resp.stat), resp.header.zxid

    async def exists(self, path: str, watch: Optional[Callable[[WatchedEvent], Any]] = None) -> Optional[ZnodeStat]:
        """The node's stat, or None. `watch` fires once at its next creation, change or
        deletion."""
        stat, zxid = await self.exists_at(path)
        if watch is not None:
            await self._one_shot(path, WatchKind.NODE, zxid, watch)
        return stat

    async def exists_at(self, path: str) -> Tuple[Optional[ZnodeStat], int]:
        consistency, min_zxid = self._read_options()
        req = pb.nodes_pb2.ExistsRequest(path=self.full_path(path), consistency=consistency, min_zxid=min_zxid)
        resp = await self._call(lambda s: s.nodes.Exists, req, write=False)
        return (ZnodeStat.from_proto(resp.stat) if resp.exists else None), resp.header.zxid

    async def get_children(
        self,
        path: str,
        watch: Optional[Callable[[WatchedEvent], Any]] = None,
        include_data: bool = False,
    ) -> Any:
        """The children's names, sorted; with `include_data`, (names, the parent's ZnodeStat)
        as kazoo returns. `watch` fires once at the next change of the children or deletion
        of the node."""
        names, stat, zxid = await self.get_children_at(path)
        if watch is not None:
            await self._one_shot(path, WatchKind.CHILDREN, zxid, watch)
        return (names, stat) if include_data else names

    async def get_children_at(self, path: str) -> Tuple[List[str], ZnodeStat, int]:
        """Every child (all pages), the parent's stat, and the zxid of the last page."""
        names: List[str] = []
        token = ""
        while True:
            consistency, min_zxid = self._read_options()
            req = pb.nodes_pb2.GetChildrenRequest(
                path=self.full_path(path), consistency=consistency, min_zxid=min_zxid, page_token=token
            )
            resp = await self._call(lambda s: s.nodes.GetChildren, req, write=False)
            names.extend(resp.names)
            token = resp.next_page_token
            if not token:
                return sorted(names), ZnodeStat.from_proto(resp.stat), resp.header.zxid

    async def set(self, path: str, value: bytes, version: int = -1) -> ZnodeStat:
        """Replaces the node's data; with `version`, only if the data version matches
        (BadVersionError otherwise). Returns the new stat."""
        req = pb.nodes_pb2.SetRequest(path=self.full_path(path), data=_bytes(value), version=_version(version))
        resp = await self._call(lambda s: s.nodes.Set, req, write=True)
        return ZnodeStat.from_proto(resp.stat)

    set_data = set

    async def delete(self, path: str, version: int = -1, recursive: bool = False) -> bool:
        """Deletes the node (with `version`: only at that data version); with `recursive`, its
        descendants first."""
        if recursive:
            await self._delete_tree(path)
            return True
        req = pb.nodes_pb2.DeleteRequest(path=self.full_path(path), version=_version(version))
        await self._call(lambda s: s.nodes.Delete, req, write=True)
        return True

    async def _delete_tree(self, path: str) -> None:
        # Bounded: a subtree that keeps gaining children is retried a few times, then the
        # server's NOT_EMPTY is reported.
        for _ in range(10):
            try:
                children = await self.get_children(path)
            except NoNodeError:
                return
            for child in children:
                await self._delete_tree(path.rstrip("/") + "/" + child)
            if path == "/":
                return
            try:
                await self.delete(path)
                return
            except NoNodeError:
                return
            except NotEmptyError:
                continue
        await self.delete(path)

    async def sync(self, path: str = "/") -> str:
        """Brings the server up to the leader's commit point (a quorum-confirmed barrier)."""
        await self._call(lambda s: s.nodes.Sync, pb.nodes_pb2.SyncRequest(path=self.full_path(path)), write=False)
        return path

    async def get_acls(self, path: str) -> Tuple[List[ACL], ZnodeStat]:
        consistency, min_zxid = self._read_options()
        req = pb.nodes_pb2.GetAclRequest(path=self.full_path(path), consistency=consistency, min_zxid=min_zxid)
        resp = await self._call(lambda s: s.nodes.GetAcl, req, write=False)
        return acl_from_pb(resp.acl), ZnodeStat.from_proto(resp.stat)

    async def set_acls(self, path: str, acls: Sequence[ACL], version: int = -1) -> ZnodeStat:
        req = pb.nodes_pb2.SetAclRequest(path=self.full_path(path), acl=acl_to_pb(acls), version=_version(version))
        resp = await self._call(lambda s: s.nodes.SetAcl, req, write=True)
        return ZnodeStat.from_proto(resp.stat)

    async def get_ephemerals(self, prefix: str = "/") -> List[str]:
        """This session's ephemeral nodes under a path prefix."""
        consistency, min_zxid = self._read_options()
        req = pb.nodes_pb2.GetEphemeralsRequest(
            prefix=self.full_path(prefix), consistency=consistency, min_zxid=min_zxid
        )
        resp = await self._call(lambda s: s.nodes.GetEphemerals, req, write=False, session=REQUIRED)
        return [self.client_path(p) for p in resp.paths]

    async def count_descendants(self, path: str) -> int:
        consistency, min_zxid = self._read_options()
        req = pb.nodes_pb2.CountDescendantsRequest(path=self.full_path(path), consistency=consistency, min_zxid=min_zxid)
        resp = await self._call(lambda s: s.nodes.CountDescendants, req, write=False)
        return int(resp.count)

    async def who_am_i(self) -> List[Tuple[str, str]]:
        """The identities the server sees on this client's requests, as (scheme, id): what ACLs
        are checked against (zkCli's whoami)."""
        resp = await self._call(lambda s: s.sessions.WhoAmI, pb.sessions_pb2.WhoAmIRequest(), write=False)
        return [(i.scheme, i.id) for i in resp.identities]

    async def server_status(self) -> Any:
        """The current server's `grove.v1.StatusResponse` (mode, leader, zxid, members)."""
        return await self._call(lambda s: s.cluster.Status, pb.cluster_pb2.StatusRequest(), write=False)

    def transaction(self) -> "AsyncTransaction":
        """A transaction: check/create/set_data/delete ops applied all-or-nothing by `await
        t.commit()` (kazoo's shape)."""
        from .transaction import AsyncTransaction

        return AsyncTransaction(self)

    # ---- watches ----

    async def watch(
        self,
        path: str,
        kind: WatchKind = WatchKind.NODE,
        *,
        start_zxid: Optional[int] = None,
        include_data: bool = False,
        one_shot: bool = False,
    ) -> AsyncWatch:
        """A watch: an async iterator of WatchEvents in zxid order, resumed by zxid on another
        server when its server fails (no gap, no duplicate). Without `start_zxid` it sees every
        change after the last zxid this client has seen (so none between an earlier read and
        the watch is missed); with it, every change from that zxid on (CompactedError if the
        servers' history no longer reaches back). Cancelled watches raise their error
        (CompactedError, SlowConsumerError, NoAuthError...)."""
        return await self._open_watch(path, kind, start_zxid, include_data, one_shot)

    async def _open_watch(
        self,
        path: str,
        kind: WatchKind,
        start_zxid: Optional[int],
        include_data: bool,
        one_shot: bool,
        queue: Any = None,
    ) -> AsyncWatch:
        await self._ready()
        assert self._watch_hub is not None
        return await self._watch_hub.add(
            self.full_path(path),
            WatchKind(kind),
            start_zxid=start_zxid,
            include_data=include_data,
            one_shot=one_shot,
            queue=queue,
        )

    async def _one_shot(self, path: str, kind: WatchKind, read_zxid: int, fn: Callable[[WatchedEvent], Any]) -> None:
        w = await self.watch(path, kind, start_zxid=read_zxid + 1, one_shot=True)

        async def deliver() -> None:
            try:
                async for ev in w:
                    r = fn(WatchedEvent(ev.type, self._state or SessionState.CONNECTED, ev.path, ev.zxid))
                    if inspect.isawaitable(r):
                        await r
                    return
            except GroveError as e:
                log.debug("one-shot watch on %s ended: %s", path, e)
            finally:
                await w.close()

        self._spawn(deliver())

    # ---- recipes ----

    def Lock(self, path: str, identifier: str = "") -> "AsyncLock":
        from .recipes import AsyncLock

        return AsyncLock(self, path, identifier)

    lock = Lock

    def ReadLock(self, path: str, identifier: str = "") -> "AsyncLock":
        from .recipes import AsyncLock

        return AsyncLock(self, path, identifier, kind="read")

    read_lock = ReadLock

    def WriteLock(self, path: str, identifier: str = "") -> "AsyncLock":
        from .recipes import AsyncLock

        return AsyncLock(self, path, identifier, kind="write")

    write_lock = WriteLock

    def Semaphore(self, path: str, max_leases: int = 1, identifier: str = "") -> "AsyncSemaphore":
        from .recipes import AsyncSemaphore

        return AsyncSemaphore(self, path, max_leases, identifier)

    semaphore = Semaphore

    def Election(self, path: str, identifier: str = "") -> "AsyncElection":
        from .recipes import AsyncElection

        return AsyncElection(self, path, identifier)

    election = Election

    def DataWatch(self, path: str, func: Optional[Callable[..., Any]] = None) -> Any:
        from .recipes import AsyncDataWatch

        return AsyncDataWatch(self, path, func)

    def ChildrenWatch(self, path: str, func: Optional[Callable[..., Any]] = None) -> Any:
        from .recipes import AsyncChildrenWatch

        return AsyncChildrenWatch(self, path, func)
