"""The synchronous client: kazoo's API over the asyncio engine (grove.aio), which runs on an
event loop in a thread of its own. Callbacks (state listeners, watch callbacks, DataWatch and
ChildrenWatch functions) run one at a time on a separate event thread, so they may call the
client."""

from __future__ import annotations

import logging
import queue
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ._loop import EventThread, LoopThread, awaitable_on
from .aio._watch import END, AsyncWatch, Item
from .aio.client import AsyncClient
from .aio.transaction import TransactionBase
from .errors import GroveError
from .model import Consistency, SessionState, WatchedEvent, WatchEvent, WatchKind, ZnodeStat
from .security import ACL

if TYPE_CHECKING:
    from . import recipes as _recipes

log = logging.getLogger("grove")


class Client:
    """A Grove client (kazoo's KazooClient, for Grove).

        client = Client("h1:7181,h2:7181,h3:7181/app", timeout=10.0)
        client.start()
        client.create("/config", b"v1", makepath=True)
        data, stat = client.get("/config")

    `hosts` is `host:port[,host:port...][/chroot]`. `timeout` is the session timeout asked
    for, in seconds (the servers clamp it; `session_timeout` is what they granted), and
    `request_timeout` bounds each call, its retries on other servers included. `auth_data`
    is kazoo's list of `("digest", "user:password")` pairs, sent with every request (use TLS:
    `ca`, `certfile`, `keyfile`, `server_name`, or `use_tls=True` for the system's roots).

    `start()` opens the session, kept alive in the background; any call starts the client if
    it was not. Use it as a context manager to close it at the end.
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
        # Arguments are checked here, in the caller's thread, before any thread starts.
        kwargs: Dict[str, Any] = dict(
            request_timeout=request_timeout,
            auth_data=list(auth_data or ()),
            read_consistency=read_consistency,
            use_tls=use_tls,
            ca=ca,
            certfile=certfile,
            keyfile=keyfile,
            server_name=server_name,
            max_watch_queue=max_watch_queue,
        )
        self._aio = AsyncClient(hosts, timeout, **kwargs)
        self._loop = LoopThread("grove-loop")
        self._events = EventThread("grove-events")
        self._listeners: Dict[Callable[[SessionState], Any], Callable[[SessionState], Any]] = {}
        self._closed = False
        # A client dropped without close() stops its threads when collected (its session then
        # expires on the servers).
        self._release = weakref.finalize(self, _release, self._loop, self._events)

    # ---- life cycle ----

    def _run(self, coro: Any, timeout: Optional[float] = None) -> Any:
        return self._loop.run(coro, timeout)

    def start(self) -> None:
        """Opens the session (state CONNECTED). Raises if no server answers within the request
        timeout."""
        self._run(self._aio.start())

    def stop(self) -> None:
        """Closes the session (its ephemerals are deleted, its locks released; held locks are
        told they are lost first): state CLOSED."""
        if not self._closed:
            self._run(self._aio.stop())

    def close(self) -> None:
        """stop(), then frees the client's threads (once the callbacks already queued, the
        listeners' CLOSED included, have run)."""
        if self._closed:
            return
        try:
            self.stop()
        finally:
            self._closed = True
            self._release()

    def __enter__(self) -> "Client":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- state ----

    @property
    def state(self) -> Optional[SessionState]:
        return self._aio.state

    @property
    def connected(self) -> bool:
        return self._aio.connected

    @property
    def session_id(self) -> Optional[int]:
        return self._aio.session_id

    @property
    def client_id(self) -> Optional[Tuple[int, bytes]]:
        return self._aio.client_id

    @property
    def session_timeout(self) -> Optional[float]:
        """The negotiated session timeout T, in seconds."""
        return self._aio.session_timeout

    @property
    def last_zxid(self) -> int:
        return self._aio.last_zxid

    @property
    def chroot(self) -> Optional[str]:
        return self._aio.chroot

    @property
    def hosts(self) -> str:
        return self._aio.hosts

    @property
    def server(self) -> str:
        """The server currently in use."""
        return self._aio.server

    @property
    def request_timeout(self) -> float:
        return self._aio.request_timeout

    def add_listener(self, listener: Callable[[SessionState], Any]) -> None:
        """Calls `listener(state)` on the event thread at every transition: CONNECTED,
        SUSPENDED, RECONNECTED, LOST, CLOSED (in order)."""
        events = self._events

        def forward(state: SessionState) -> None:
            events.submit(listener, state)

        self._listeners[listener] = forward
        self._loop.loop.call_soon_threadsafe(self._aio.add_listener, forward)

    def remove_listener(self, listener: Callable[[SessionState], Any]) -> None:
        forward = self._listeners.pop(listener, None)
        if forward is not None:
            self._loop.loop.call_soon_threadsafe(self._aio.remove_listener, forward)

    def add_auth(self, scheme: str, credential: str) -> None:
        self._aio.add_auth(scheme, credential)

    def ensure_session(self) -> int:
        """Opens a session if there is none (after LOST: a new one); returns its id."""
        return int(self._run(self._aio.ensure_session()).id)

    # ---- the verbs ----

    def _callback(self, watch: Optional[Callable[[WatchedEvent], Any]]) -> Optional[Callable[..., Any]]:
        return None if watch is None else awaitable_on(self._events, watch)

    def create(
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
        """Creates a node; returns its path (with the sequence suffix), or (path, ZnodeStat)
        with `include_data`. `ttl` in milliseconds; `makepath` creates missing parents."""
        return self._run(
            self._aio.create(path, value, acl, ephemeral, sequence, makepath, container, ttl, include_data)
        )

    def ensure_path(self, path: str, acl: Optional[Sequence[ACL]] = None) -> bool:
        return bool(self._run(self._aio.ensure_path(path, acl)))

    def get(self, path: str, watch: Optional[Callable[[WatchedEvent], Any]] = None) -> Tuple[bytes, ZnodeStat]:
        """(data, ZnodeStat). `watch(event)` is called once, on the event thread, at the next
        change or deletion after this read."""
        return self._run(self._aio.get(path, self._callback(watch)))  # type: ignore[no-any-return]

    def exists(self, path: str, watch: Optional[Callable[[WatchedEvent], Any]] = None) -> Optional[ZnodeStat]:
        return self._run(self._aio.exists(path, self._callback(watch)))  # type: ignore[no-any-return]

    def get_children(
        self,
        path: str,
        watch: Optional[Callable[[WatchedEvent], Any]] = None,
        include_data: bool = False,
    ) -> Any:
        """The children's names (sorted); with `include_data`, (names, parent's ZnodeStat)."""
        return self._run(self._aio.get_children(path, self._callback(watch), include_data))

    def set(self, path: str, value: bytes, version: int = -1) -> ZnodeStat:
        return self._run(self._aio.set(path, value, version))  # type: ignore[no-any-return]

    set_data = set

    def delete(self, path: str, version: int = -1, recursive: bool = False) -> bool:
        return bool(self._run(self._aio.delete(path, version, recursive)))

    def sync(self, path: str = "/") -> str:
        return str(self._run(self._aio.sync(path)))

    def get_acls(self, path: str) -> Tuple[List[ACL], ZnodeStat]:
        return self._run(self._aio.get_acls(path))  # type: ignore[no-any-return]

    def set_acls(self, path: str, acls: Sequence[ACL], version: int = -1) -> ZnodeStat:
        return self._run(self._aio.set_acls(path, acls, version))  # type: ignore[no-any-return]

    def get_ephemerals(self, prefix: str = "/") -> List[str]:
        return self._run(self._aio.get_ephemerals(prefix))  # type: ignore[no-any-return]

    def count_descendants(self, path: str) -> int:
        return int(self._run(self._aio.count_descendants(path)))

    def who_am_i(self) -> List[Tuple[str, str]]:
        """The identities the server sees on this client's requests, as (scheme, id)."""
        return self._run(self._aio.who_am_i())  # type: ignore[no-any-return]

    def server_status(self) -> Any:
        return self._run(self._aio.server_status())

    def transaction(self) -> "Transaction":
        """check/create/set_data/delete/check_fence ops, applied all-or-nothing by commit()."""
        return Transaction(self)

    def watch(
        self,
        path: str,
        kind: WatchKind = WatchKind.NODE,
        *,
        start_zxid: Optional[int] = None,
        include_data: bool = False,
        one_shot: bool = False,
    ) -> "Watch":
        """A watch: an iterator of WatchEvents in zxid order that resumes by zxid on another
        server when its server fails (no gap, no duplicate). Without `start_zxid` it sees
        every change after the last zxid this client has seen (reads, writes, keepalives), so
        none between an earlier read and the watch is missed."""
        q: "queue.Queue[Item]" = queue.Queue()
        aw = self._run(self._aio._open_watch(path, kind, start_zxid, include_data, one_shot, q))
        return Watch(self, aw, q)

    # ---- recipes ----

    def Lock(self, path: str, identifier: str = "") -> "_recipes.Lock":
        from .recipes import Lock

        return Lock(self, path, identifier)

    lock = Lock

    def ReadLock(self, path: str, identifier: str = "") -> "_recipes.Lock":
        from .recipes import ReadLock

        return ReadLock(self, path, identifier)

    read_lock = ReadLock

    def WriteLock(self, path: str, identifier: str = "") -> "_recipes.Lock":
        from .recipes import WriteLock

        return WriteLock(self, path, identifier)

    write_lock = WriteLock

    def Semaphore(self, path: str, max_leases: int = 1, identifier: str = "") -> "_recipes.Semaphore":
        from .recipes import Semaphore

        return Semaphore(self, path, max_leases, identifier)

    semaphore = Semaphore

    def Election(self, path: str, identifier: str = "") -> "_recipes.Election":
        from .recipes import Election

        return Election(self, path, identifier)

    election = Election

    def DataWatch(self, path: str, func: Optional[Callable[..., Any]] = None) -> "_recipes.DataWatch":
        from .recipes import DataWatch

        return DataWatch(self, path, func)

    def ChildrenWatch(self, path: str, func: Optional[Callable[..., Any]] = None) -> "_recipes.ChildrenWatch":
        from .recipes import ChildrenWatch

        return ChildrenWatch(self, path, func)


def _release(loop: LoopThread, events: EventThread) -> None:
    events.shutdown()
    loop.stop()


class Watch:
    """A watch's events: `for event in watch`, or `watch.get(timeout)`. Ends when closed (a
    one-shot watch after its event); raises the error of a watch the server cancelled
    (CompactedError, SlowConsumerError, NoAuthError...)."""

    def __init__(self, client: Client, aw: AsyncWatch, q: "queue.Queue[Item]") -> None:
        self._client = client
        self._aw = aw
        self._q = q
        self._ended = False

    @property
    def last_zxid(self) -> int:
        return self._aw.last_zxid

    def __iter__(self) -> Iterator[WatchEvent]:
        return self

    def __next__(self) -> WatchEvent:
        if self._ended:
            raise StopIteration
        return self._item(self._q.get())

    def _item(self, item: Item) -> WatchEvent:
        if item is END or not isinstance(item, (WatchEvent, GroveError)):
            self._ended = True
            raise StopIteration
        if isinstance(item, GroveError):
            self._ended = True
            raise item
        return item

    def get(self, timeout: Optional[float] = None) -> WatchEvent:
        """The next event; TimeoutError if none within `timeout` seconds; StopIteration once the
        watch ended."""
        if self._ended:
            raise StopIteration
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no event within {timeout} s") from None
        return self._item(item)

    def close(self) -> None:
        if not self._client._closed:
            self._client._run(self._aw.close())

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transaction(TransactionBase):
    """kazoo's TransactionRequest: collect ops, then commit() (or leave a `with` block)."""

    def __init__(self, client: Client) -> None:
        super().__init__(client._aio)
        self._sync_client = client

    def commit(self) -> List[Any]:
        return self._sync_client._run(self._commit())  # type: ignore[no-any-return]

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is None and not self.committed:
            self.commit()
