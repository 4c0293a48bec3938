"""The synchronous recipes: kazoo's Lock, ReadLock, WriteLock, Semaphore, Election, DataWatch
and ChildrenWatch, on the server's Locks and Election services (see grove.aio.recipes).

Each grant exposes its fencing `token` and stops on LOST: `lost` (a threading.Event) is set
from the client's event loop the moment the session is lost, before the state listeners hear
and before the servers could grant the lock to anyone else; an Election's `run(func)` raises
SessionExpiredError when `func` returns after its leadership was lost.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Type

from .aio.recipes import (
    AsyncChildrenWatch,
    AsyncDataWatch,
    AsyncElection,
    AsyncLock,
    AsyncSemaphore,
    _Grant,
    _Watcher,
)
from .errors import GroveError, SessionExpiredError
from .model import LeaderInfo, LockEntry

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("grove")



def _sync_client(client: "Client", what: str) -> "Client":
    if not hasattr(client, "_loop"):
        raise TypeError(f"grove.{what} takes a grove.Client; with an AsyncClient use grove.aio.{what}")
    return client


class _SyncGrant:
    _a: _Grant

    def __init__(self, client: "Client", grant: _Grant) -> None:
        self._client = client
        self._a = grant
        #: Set when the session holding the grant is lost (or the client is closed).
        self.lost = threading.Event()
        grant.add_lost_callback(lambda _g: self.lost.set())

    @property
    def path(self) -> str:
        return self._a.path

    @property
    def token(self) -> Optional[int]:
        """The fencing token of the current (or last) grant."""
        return self._a.token

    @property
    def node(self) -> Optional[str]:
        return self._a.node

    @property
    def is_acquired(self) -> bool:
        return self._a.is_acquired

    @property
    def is_lost(self) -> bool:
        return self._a.is_lost

    @property
    def lost_reason(self) -> Optional[str]:
        return self._a.lost_reason

    def participants(self) -> List[LockEntry]:
        """The holders (or leader) and the waiters, in line order."""
        return self._client._run(self._a.participants())  # type: ignore[no-any-return]

    def contenders(self) -> List[str]:
        """Their identifiers (kazoo)."""
        return self._client._run(self._a.contenders())  # type: ignore[no-any-return]


class Lock(_SyncGrant):
    """A lock on the server (kazoo's Lock): FIFO, not reentrant, with a fencing token.

        with client.lock("/locks/x") as token:
            ...   # pass `token` to the resource; `lock.lost` is set if the session is lost
    """

    _a: AsyncLock
    _kind = "mutex"

    def __init__(self, client: "Client", path: str, identifier: str = "") -> None:
        client = _sync_client(client, type(self).__name__)
        super().__init__(client, AsyncLock(client._aio, path, identifier, kind=self._kind))

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """Waits until granted (True). With `timeout` (seconds): LockTimeoutError if not granted
        by then; `blocking=False`: False at once if held elsewhere."""
        got = bool(self._client._run(self._a.acquire(blocking, timeout)))
        if got:
            self.lost.clear()
        return got

    def release(self) -> bool:
        """Releases it. SessionExpiredError if it was lost with its session."""
        return bool(self._client._run(self._a.release()))

    def __enter__(self) -> int:
        self.acquire()
        assert self.token is not None
        return self.token

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is None:
            self.release()
            return
        try:
            self.release()
        except GroveError as e:
            log.debug("releasing %s after an exception: %s", self.path, e)


class ReadLock(Lock):
    """The shared half of a fair read/write lock (kazoo's ReadLock)."""

    _kind = "read"


class WriteLock(Lock):
    """The exclusive half of a fair read/write lock (kazoo's WriteLock)."""

    _kind = "write"


class Semaphore(Lock):
    """A counting semaphore of `max_leases` leases (kazoo's Semaphore); each object holds one."""

    _a: AsyncSemaphore

    def __init__(self, client: "Client", path: str, max_leases: int = 1, identifier: str = "") -> None:
        client = _sync_client(client, "Semaphore")
        _SyncGrant.__init__(self, client, AsyncSemaphore(client._aio, path, max_leases, identifier))

    @property
    def max_leases(self) -> int:
        return self._a.max_leases

    def lease_holders(self) -> List[str]:
        return self._client._run(self._a.lease_holders())  # type: ignore[no-any-return]


class Election(_SyncGrant):
    """Leader election on the server (kazoo's Election).

    `run(func, *args)` blocks until elected, runs `func` in the calling thread with the
    leadership's fencing token in `election.token`, and resigns when it returns. If the
    session is lost meanwhile, `election.lost` is set at once (poll it, or wait on it, in
    `func`) and run() raises SessionExpiredError once `func` returns: the election is exited.
    `cancel()` (from another thread) stops a campaign; run() then returns None.
    """

    _a: AsyncElection

    def __init__(self, client: "Client", path: str, identifier: str = "") -> None:
        client = _sync_client(client, "Election")
        super().__init__(client, AsyncElection(client._aio, path, identifier))

    @property
    def is_leader(self) -> bool:
        return self._a.is_leader

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            self._client._run(self._a.campaign())
        except (concurrent.futures.CancelledError, asyncio.CancelledError):
            return None
        self.lost.clear()
        try:
            result = func(*args, **kwargs)
        finally:
            if not self._a.is_lost and self._a.is_acquired:
                try:
                    self._client._run(self._a.resign())
                except GroveError as e:
                    log.debug("resigning %s: %s", self.path, e)
        if self._a.is_lost:
            raise SessionExpiredError(f"leadership of {self.path} lost: {self._a.lost_reason}")
        return result

    def cancel(self) -> None:
        self._client._run(self._a.cancel())

    def proclaim(self, value: bytes) -> None:
        self._client._run(self._a.proclaim(value))

    def leader(self) -> Optional[LeaderInfo]:
        return self._client._run(self._a.leader())  # type: ignore[no-any-return]


class _SyncWatcher:
    _async_class: Type[_Watcher]

    def __init__(self, client: "Client", path: str, func: Optional[Callable[..., Any]] = None) -> None:
        self._client = _sync_client(client, type(self).__name__)
        self._path = path
        self._a: Optional[_Watcher] = None
        if func is not None:
            self(func)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Starts the watcher; usable as a decorator. The first call of `func` has happened when
        this returns (as in kazoo), unless called from the event thread itself."""
        client = self._client

        async def make() -> _Watcher:
            client._aio._check_open()
            if not client._aio._started:
                await client._aio.start()
            return self._async_class(client._aio, self._path, func, client._events.invoke)

        self._a = client._run(make())
        if not client._events.in_thread():

            async def first() -> None:
                assert self._a is not None
                await asyncio.wait_for(self._a.started.wait(), client.request_timeout * 2)

            try:
                client._run(first())
            except asyncio.TimeoutError:
                log.warning("%s on %s: no first call within the request timeout", type(self).__name__, self._path)
        return func

    def stop(self) -> None:
        """Stops watching (kazoo: return False from the function)."""
        if self._a is not None:
            self._client._loop.loop.call_soon_threadsafe(self._a.stop)

    @property
    def stopped(self) -> bool:
        return self._a is None or self._a.stopped


class DataWatch(_SyncWatcher):
    """kazoo's DataWatch: `func(data, stat)` (or `func(data, stat, event)`) on the event
    thread, now and at every change of the node in zxid order ((None, None) while it does not
    exist); returning False stops it."""

    _async_class = AsyncDataWatch


class ChildrenWatch(_SyncWatcher):
    """kazoo's ChildrenWatch: `func(children)` on the event thread, now and whenever the list
    changes; stops when the node is missing or deleted, or `func` returns False."""

    _async_class = AsyncChildrenWatch
