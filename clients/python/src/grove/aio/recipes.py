"""Recipes on the server's Locks and Election services, and kazoo's DataWatch/ChildrenWatch.

Locks, semaphore leases and leaderships are granted by the servers (FIFO, each grant with a
fencing token that increases for a lock over the ensemble's whole history) and belong to
the session that asked. They stop on LOST: a holder whose session is lost is told first
(`lost` is set, callbacks run, an election's leader task is cancelled), before the
listeners hear and before the servers could grant the lock to anyone else.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import secrets
from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, Optional

from .. import _proto as pb
from ..errors import GroveError, LockTimeoutError, NoNodeError, SessionExpiredError
from ..model import EventType, LeaderInfo, LockEntry, SessionState, WatchedEvent, WatchKind, ZnodeStat
from ._session import Session

if TYPE_CHECKING:
    from .client import AsyncClient

log = logging.getLogger("grove")

ELECTIONS_ROOT = "/elections"

_KINDS = {
    "mutex": pb.locks_pb2.MUTEX,
    "read": pb.locks_pb2.READ,
    "write": pb.locks_pb2.WRITE,
    "semaphore": pb.locks_pb2.SEMAPHORE,
}
_KIND_NAMES = {v: k for k, v in _KINDS.items()}

LostCallback = Callable[[Any], Any]


def election_path(name: str) -> str:
    """A name without a leading '/' is an election under /elections (as on the server)."""
    return name if name.startswith("/") else f"{ELECTIONS_ROOT}/{name}"


def _entry(client: "AsyncClient", e: Any) -> LockEntry:
    return LockEntry(
        node=client.client_path(e.node),
        kind=_KIND_NAMES.get(e.kind, "mutex"),
        granted=e.granted,
        token=e.token,
        session_id=e.session_id,
        owner=e.owner,
        holds=e.holds,
        data=bytes(e.data),
    )


class _Grant:
    """What a lock, lease or leadership holds, and how it learns the session ended."""

    def __init__(self, client: "AsyncClient", path: str) -> None:
        self.client = client
        self.path = path
        #: The fencing token of the current (or last) grant.
        self.token: Optional[int] = None
        #: The server node holding the grant.
        self.node: Optional[str] = None
        self._session: Optional[Session] = None
        self.lost_reason: Optional[str] = None
        self._lost_event: Optional[asyncio.Event] = None
        self._lost_callbacks: List[LostCallback] = []
        self._waiting: "Optional[asyncio.Task[Any]]" = None
        self._waiting_session: Optional[Session] = None
        self._cancelled_by_loss = False

    @property
    def lost(self) -> asyncio.Event:
        """Set when the session holding the grant is lost (or the client closed)."""
        if self._lost_event is None:
            self._lost_event = asyncio.Event()
            if self.lost_reason is not None:
                self._lost_event.set()
        return self._lost_event

    @property
    def is_lost(self) -> bool:
        return self.lost_reason is not None

    @property
    def is_acquired(self) -> bool:
        return self._session is not None and not self._session.lost

    @property
    def session_id(self) -> Optional[int]:
        return self._session.id if self._session is not None else None

    def add_lost_callback(self, fn: LostCallback) -> None:
        """`fn(self)` is called in the event loop when the grant is lost, before the client's
        state listeners hear LOST."""
        self._lost_callbacks.append(fn)

    def _session_lost(self, session: Session, reason: str) -> None:
        if session is self._waiting_session and self._waiting is not None and not self._waiting.done():
            self._cancelled_by_loss = True
            self._waiting.cancel()
        if session is not self._session:
            return
        self.lost_reason = reason
        if self._lost_event is not None:
            self._lost_event.set()
        for fn in list(self._lost_callbacks):
            try:
                r = fn(self)
                if inspect.isawaitable(r):
                    asyncio.ensure_future(r)
            except Exception:
                log.exception("lost callback of %s failed", self.path)

    async def _wait_granted(self, call: Callable[[Session], Awaitable[Any]]) -> Any:
        """Runs the waiting call for a grant under the current session; if that session is lost
        meanwhile, the wait is cancelled (the servers withdraw it) and SessionExpiredError
        raised."""
        session = await self.client.ensure_session()
        self._waiting = asyncio.current_task()
        self._waiting_session = session
        self._cancelled_by_loss = False
        session.hold(self)
        try:
            resp = await call(session)
        except BaseException as e:
            if self._session is not session:
                session.forget(self)
            if isinstance(e, asyncio.CancelledError) and self._cancelled_by_loss:
                raise SessionExpiredError(
                    f"{self.path}: the session was lost while waiting: {session.lost_reason}"
                ) from None
            raise
        finally:
            self._waiting = None
            self._waiting_session = None
        self._session = session
        self.lost_reason = None
        if self._lost_event is not None:
            self._lost_event.clear()
        return resp

    def _bound_session(self) -> Session:
        s = self._session
        if s is None:
            raise RuntimeError(f"{self.path}: not held")
        if s.lost or self.lost_reason is not None:
            raise SessionExpiredError(
                f"{self.path}: lost with session 0x{s.id:x}: {self.lost_reason or s.lost_reason}"
            )
        return s

    async def participants(self) -> List[LockEntry]:
        """The holders (or leader) and the waiters, in line order."""
        req = pb.locks_pb2.DescribeLockRequest(
            path=self.client.full_path(self.path), consistency=self.client.read_consistency.name
        )
        resp = await self.client._call(lambda srv: srv.locks.Describe, req, write=False)
        return [_entry(self.client, e) for e in resp.entries]

    async def contenders(self) -> List[str]:
        """The identifiers of the holders (or leader) and the waiters, in line order (kazoo)."""
        return [e.data.decode(errors="replace") for e in await self.participants()]

    def _clear(self) -> None:
        s = self._session
        if s is not None:
            s.forget(self)
        self._session = None
        self.node = None


class AsyncLock(_Grant):
    """A lock on the server (kazoo's Lock, ReadLock, WriteLock): FIFO, not reentrant (a second
    Lock object on the same path waits like anyone else), with a fencing token.

        async with client.lock("/locks/x") as token:
            ...  # hand `token` to the resource; check `lock.lost`
    """

    def __init__(
        self,
        client: "AsyncClient",
        path: str,
        identifier: str = "",
        kind: str = "mutex",
        max_leases: int = 0,
    ) -> None:
        super().__init__(client, path)
        if kind not in _KINDS:
            raise ValueError(f"lock kind {kind!r} is not one of {sorted(_KINDS)}")
        self.identifier = identifier
        self.kind = kind
        self.max_leases = max_leases
        # Each object is its own owner within the session, so two objects on one path
        # contend like any two holders (kazoo's semantics), read and write halves included.
        self.owner = f"py-{os.getpid()}-{secrets.token_hex(8)}"

    async def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """Waits until granted; True. With `timeout` (seconds), LockTimeoutError if not granted
        by then; with `blocking=False`, False at once if someone else holds it. Nothing is
        left queued when it gives up."""
        if self.is_acquired:
            raise RuntimeError(f"{self.path} is already held by this object (locks are not reentrant)")
        wait = timeout if blocking else 0.001
        full = self.client.full_path(self.path)

        def request(wait_ms: int) -> Any:
            return pb.locks_pb2.AcquireRequest(
                paths=[full],
                kind=_KINDS[self.kind],
                owner=self.owner,
                permits=1,
                max_leases=self.max_leases,
                timeout_ms=wait_ms,
                data=self.identifier.encode(),
            )

        try:
            resp = await self._wait_granted(
                lambda s: self.client.waiting_call(lambda srv: srv.locks.Acquire, request, timeout=wait, session=s)
            )
        except LockTimeoutError:
            if not blocking:
                return False
            raise
        self.token = resp.token
        self.node = self.client.client_path(resp.nodes[0])
        return True

    async def release(self) -> bool:
        """Releases the grant. SessionExpiredError if it was lost with its session (the
        servers released it then); False if it was not held."""
        if self._session is None:
            return False
        s = self._bound_session()
        req = pb.locks_pb2.ReleaseRequest(node=self.client.full_path(self.node or ""))
        resp = await self.client._call(lambda srv: srv.locks.Release, req, write=True, session=s)
        self._clear()
        return bool(resp.released)

    async def __aenter__(self) -> int:
        await self.acquire()
        assert self.token is not None
        return self.token

    async def __aexit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is None:
            await self.release()
            return
        try:
            await self.release()
        except GroveError as e:  # the block's own exception matters more
            log.debug("releasing %s after an exception: %s", self.path, e)


class AsyncSemaphore(AsyncLock):
    """A counting semaphore with `max_leases` leases (kazoo's Semaphore); every user of the
    path must agree on the size. Each object holds at most one lease."""

    def __init__(self, client: "AsyncClient", path: str, max_leases: int = 1, identifier: str = "") -> None:
        if max_leases < 1:
            raise ValueError("max_leases must be at least 1")
        super().__init__(client, path, identifier, kind="semaphore", max_leases=max_leases)

    async def lease_holders(self) -> List[str]:
        return [e.data.decode(errors="replace") for e in await self.participants() if e.granted]


class AsyncElection(_Grant):
    """Leader election on the server (kazoo's Election). `await election.run(func)` campaigns,
    and once elected runs `func` (a coroutine function; a plain function runs in a thread);
    leadership is given up when it returns. If the session is lost while it leads, `lost` is
    set, a coroutine's task is cancelled, and run() raises SessionExpiredError: the
    leadership is over."""

    def __init__(self, client: "AsyncClient", path: str, identifier: str = "") -> None:
        super().__init__(client, election_path(path))
        self.identifier = identifier
        self._leading: "Optional[asyncio.Task[Any]]" = None

    @property
    def is_leader(self) -> bool:
        return self.is_acquired

    async def campaign(self, timeout: Optional[float] = None) -> int:
        """Waits until elected; returns the leadership's fencing token."""
        if self.is_acquired:
            return self.token or 0
        full = self.client.full_path(self.path)
        value = self.identifier.encode()

        def request(wait_ms: int) -> Any:
            return pb.locks_pb2.CampaignRequest(name=full, value=value, timeout_ms=wait_ms)

        resp = await self._wait_granted(
            lambda s: self.client.waiting_call(lambda srv: srv.election.Campaign, request, timeout=timeout, session=s)
        )
        self.token = resp.token
        self.node = self.client.client_path(resp.node)
        return self.token

    async def resign(self) -> None:
        """Gives leadership up."""
        if self._session is None:
            return
        s = self._bound_session()
        req = pb.locks_pb2.ResignRequest(name=self.client.full_path(self.path), node=self.client.full_path(self.node or ""))
        await self.client._call(lambda srv: srv.election.Resign, req, write=True, session=s)
        self._clear()

    async def proclaim(self, value: bytes) -> None:
        """Changes the value everyone sees as the leader's (FencedError if no longer leading)."""
        s = self._bound_session()
        req = pb.locks_pb2.ProclaimRequest(
            name=self.client.full_path(self.path), node=self.client.full_path(self.node or ""), value=value
        )
        await self.client._call(lambda srv: srv.election.Proclaim, req, write=True, session=s)

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        await self.campaign()
        session = self._session
        try:
            if inspect.iscoroutinefunction(func):
                self._leading = asyncio.ensure_future(func(*args, **kwargs))
                try:
                    return await self._leading
                except asyncio.CancelledError:
                    if self.is_lost:
                        raise SessionExpiredError(f"leadership of {self.path} lost: {self.lost_reason}") from None
                    raise
            # A plain function runs in a thread: on the loop it would stop the keepalives. It
            # cannot be cancelled; it can poll `lost`.
            result = await asyncio.to_thread(func, *args, **kwargs)
            if self.is_lost:
                raise SessionExpiredError(f"leadership of {self.path} lost: {self.lost_reason}")
            return result
        finally:
            self._leading = None
            if session is not None and not session.lost and self._session is session:
                try:
                    await self.resign()
                except GroveError as e:
                    log.debug("resigning %s: %s", self.path, e)

    def _session_lost(self, session: Session, reason: str) -> None:
        held = session is self._session
        super()._session_lost(session, reason)
        if held and self._leading is not None and not self._leading.done():
            self._leading.cancel()

    async def cancel(self) -> None:
        """Stops campaigning (a run() waiting to be elected raises CancelledError) or gives up
        leadership."""
        if self._waiting is not None and not self._waiting.done():
            self._waiting.cancel()
        if self._leading is not None and not self._leading.done():
            self._leading.cancel()
        elif self.is_acquired:
            await self.resign()

    async def leader(self) -> Optional[LeaderInfo]:
        req = pb.locks_pb2.LeaderRequest(name=self.client.full_path(self.path), consistency=self.client.read_consistency.name)
        r = await self.client._call(lambda srv: srv.election.Leader, req, write=False)
        if not r.present:
            return None
        return LeaderInfo(node=self.client.client_path(r.node), value=bytes(r.value), token=r.token, session_id=r.session_id)


# ---- kazoo's watchers ----

#: How a watcher calls the user's function: directly (asyncio), or on the sync client's
#: event thread. Returns what the function returned.
Invoker = Callable[..., Awaitable[Any]]


async def _invoke_direct(func: Callable[..., Any], *args: Any) -> Any:
    r = func(*args)
    if inspect.isawaitable(r):
        r = await r
    return r


def _arity(func: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 3
    return len([p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])


class _Watcher:
    def __init__(
        self,
        client: "AsyncClient",
        path: str,
        func: Optional[Callable[..., Any]],
        invoke: Invoker = _invoke_direct,
    ) -> None:
        self._client = client
        self._path = path
        self._invoke = invoke
        self._func: Optional[Callable[..., Any]] = None
        self._task: "Optional[asyncio.Task[None]]" = None
        self._stopped = False
        #: Set once the first call of the function returned.
        self.started = asyncio.Event()
        if func is not None:
            self(func)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Use as a decorator: `@client.DataWatch("/x")`."""
        self._func = func
        self._task = self._client._spawn(self._guarded())
        return func

    async def _guarded(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("watcher on %s stopped", self._path)
        finally:
            self._stopped = True
            self.started.set()

    async def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def _watch_from(self, kind: WatchKind, zxid: int, include_data: bool) -> Any:
        return await self._client.watch(self._path, kind, start_zxid=zxid + 1, include_data=include_data)

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    @property
    def stopped(self) -> bool:
        return self._stopped


class AsyncDataWatch(_Watcher):
    """kazoo's DataWatch: `func(data, stat)` (or `func(data, stat, event)`) now, and at every
    change of the node, in zxid order: (None, None) while it does not exist. Returning False
    stops it. Events carry the data, so no change is missed and none costs a read."""

    async def _run(self) -> None:
        assert self._func is not None
        func = self._func
        wants_event = _arity(func) >= 3
        c = self._client

        async def call(data: Optional[bytes], stat: Optional[ZnodeStat], event: Optional[WatchedEvent]) -> bool:
            args = (data, stat, event) if wants_event else (data, stat)
            r = await self._invoke(func, *args)
            self.started.set()
            return r is not False

        while not self._stopped:
            try:
                data, stat, zxid = await c.get_at(self._path)
            except NoNodeError:
                stat0, zxid = await c.exists_at(self._path)
                if stat0 is not None:
                    continue  # created in between: read it
                data, stat = None, None
            if not await call(data, stat, None):
                return
            try:
                async with await self._watch_from(WatchKind.NODE, zxid, True) as w:
                    async for ev in w:
                        if ev.type == EventType.DELETED:
                            data, stat = None, None
                        else:
                            data, stat = ev.data, ev.stat
                        event = WatchedEvent(ev.type, c.state or SessionState.CONNECTED, ev.path, ev.zxid)
                        if not await call(data, stat, event):
                            return
            except GroveError as e:
                # COMPACTED or SLOW_CONSUMER: read again and watch from there.
                log.info("DataWatch on %s restarts after %s", self._path, e)


class AsyncChildrenWatch(_Watcher):
    """kazoo's ChildrenWatch: `func(children)` now and whenever the list changes. Stops if the
    node does not exist or is deleted, or when `func` returns False."""

    async def _run(self) -> None:
        assert self._func is not None
        func = self._func
        c = self._client
        last: Optional[List[str]] = None
        while not self._stopped:
            try:
                names, _, zxid = await c.get_children_at(self._path)
            except NoNodeError:
                return
            if names != last:
                last = names
                r = await self._invoke(func, list(names))
                self.started.set()
                if r is False:
                    return
            self.started.set()
            try:
                async with await self._watch_from(WatchKind.CHILDREN, zxid, False) as w:
                    seen = zxid
                    async for ev in w:
                        if ev.zxid <= seen:
                            continue  # already reflected in the last read
                        if ev.type == EventType.DELETED and ev.path == self._path:
                            return
                        try:
                            names, _, seen = await c.get_children_at(self._path)
                        except NoNodeError:
                            return
                        if names != last:
                            last = names
                            if await self._invoke(func, list(names)) is False:
                                return
            except GroveError as e:
                log.info("ChildrenWatch on %s restarts after %s", self._path, e)

