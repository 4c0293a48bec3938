"""Watches: one bidirectional Watch stream per client carries them all, resumed by zxid.

Each watch remembers the zxid it needs next (the last event's zxid + 1, or the zxid its
`created` answer said it starts after + 1). When the stream breaks, the hub opens one on
another server and creates every watch again with `start_zxid` = that zxid: the server
replays what was missed from its history, and anything older than the resume point is
dropped here, so a watch sees every change once, in zxid order, across server failures. A
watch the server cancels (COMPACTED: the history no longer reaches back; SLOW_CONSUMER;
NO_AUTH...) ends with that error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

import grpc

from .. import _proto as pb
from .._connect import backoff
from ..errors import (
    ClientClosedError,
    CompactedError,
    ConnectionLossError,
    ErrorCode,
    GroveError,
    SlowConsumerError,
    from_code,
    from_rpc_error,
    is_retryable,
)
from ..model import EventType, WatchEvent, WatchKind, ZnodeStat

if TYPE_CHECKING:
    from .client import AsyncClient

log = logging.getLogger("grove")

_EVENT_TYPES = {
    1: EventType.CREATED,
    2: EventType.DELETED,
    3: EventType.CHANGED,
    4: EventType.CHILD,
}


class _End:
    """Put in a watch's queue when it ends without an error."""


END = _End()

Item = Union[WatchEvent, GroveError, _End]


class WatchState:
    """A watch as the hub keeps it. `queue` is an asyncio.Queue or a queue.Queue: anything
    with put_nowait and qsize, used only from the event loop."""

    def __init__(
        self,
        watch_id: int,
        path: str,
        kind: WatchKind,
        start_zxid: Optional[int],
        include_data: bool,
        one_shot: bool,
        queue: Any,
        implicit_start: bool,
    ) -> None:
        self.id = watch_id
        self.path = path
        self.kind = kind
        self.include_data = include_data
        self.one_shot = one_shot
        self.queue = queue
        #: Events with a zxid below this were delivered (or precede the watch). None: from
        #: the server's now, until its `created` answer says where that is.
        self.next_zxid: Optional[int] = start_zxid
        #: The start was not the caller's but the client's last zxid + 1.
        self.implicit_start = implicit_start
        #: The stream generation the watch was last created on, and whether the server
        #: confirmed it there.
        self.gen = -1
        self.confirmed = False
        self.first: "Optional[asyncio.Future[None]]" = None
        self.done = False

    @property
    def last_zxid(self) -> int:
        return (self.next_zxid or 1) - 1


class WatchHub:
    def __init__(self, client: "AsyncClient") -> None:
        self.client = client
        self.watches: Dict[int, WatchState] = {}
        self._next_id = 1
        self._call: Any = None
        self._gen = 0
        self._task: "Optional[asyncio.Task[None]]" = None
        self._wanted = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._closed = False

    # ---- the user's side ----

    async def add(
        self,
        path: str,
        kind: WatchKind,
        *,
        start_zxid: Optional[int],
        include_data: bool,
        one_shot: bool,
        queue: Any = None,
    ) -> "AsyncWatch":
        if self._closed:
            raise ClientClosedError("the client is closed")
        if start_zxid is not None and start_zxid < 0:
            raise ValueError("start_zxid must not be negative")
        loop = asyncio.get_running_loop()
        # Without a start, the watch starts after the last zxid this client has seen (its
        # reads, writes, keepalives): nothing between a read and the watch is missed, whichever
        # servers served them. The keepalives keep that zxid recent.
        implicit = not start_zxid and self.client.last_zxid > 0
        w = WatchState(
            self._next_id,
            path,
            kind,
            self.client.last_zxid + 1 if implicit else (start_zxid or None),
            include_data,
            one_shot,
            queue if queue is not None else asyncio.Queue(),
            implicit,
        )
        self._next_id += 1
        w.first = loop.create_future()
        self.watches[w.id] = w
        self._wanted.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        await self._create(w, self._gen)
        try:
            await asyncio.wait_for(asyncio.shield(w.first), timeout=self.client.request_timeout)
        except asyncio.TimeoutError:
            await self.cancel(w)
            raise ConnectionLossError(
                f"watch on {path}: no server confirmed it within {self.client.request_timeout:g} s"
            ) from None
        return AsyncWatch(self, w)

    async def cancel(self, w: WatchState) -> None:
        if self.watches.pop(w.id, None) is None:
            return
        self._finish(w, END)
        if w.gen == self._gen and self._call is not None:
            await self._write(pb.watch_pb2.WatchRequest(cancel=pb.watch_pb2.WatchCancelRequest(watch_id=w.id)))

    async def close(self) -> None:
        self._closed = True
        for w in list(self.watches.values()):
            self._finish(w, ClientClosedError("the client is closed"))
        self.watches.clear()
        if self._task is not None:
            self._task.cancel()
        if self._call is not None:
            self._call.cancel()

    # ---- the stream ----

    async def _write(self, request: Any) -> None:
        call = self._call
        if call is None:
            return
        async with self._write_lock:
            try:
                await call.write(request)
            except Exception as e:  # the stream broke: the reader reconnects and re-creates
                log.debug("watch stream write failed: %r", e)

    async def _create(self, w: WatchState, gen: int) -> None:
        if self._call is None or gen != self._gen or w.done or w.gen == gen:
            return
        w.gen = gen
        w.confirmed = False
        start = w.next_zxid or 0  # 0: from the server's now
        await self._write(
            pb.watch_pb2.WatchRequest(
                create=pb.watch_pb2.WatchCreateRequest(
                    watch_id=w.id,
                    path=w.path,
                    kind=w.kind.name,
                    one_shot=w.one_shot,
                    start_zxid=start,
                    include_data=w.include_data,
                )
            )
        )

    async def _run(self) -> None:
        c = self.client
        attempt = 0
        while not self._closed:
            if not self.watches:
                self._wanted.clear()
                await self._wanted.wait()
                continue
            n = len(c._servers)
            i = (c._current + attempt) % n
            call = c._servers[i].watch.Watch(metadata=c.auth_metadata())
            self._gen += 1
            gen = self._gen
            self._call = call
            error: Optional[GroveError] = None
            try:
                for w in list(self.watches.values()):
                    await self._create(w, gen)
                while True:
                    resp = await call.read()
                    if resp is grpc.aio.EOF:
                        break
                    attempt = 0
                    self._dispatch(resp, gen)
            except asyncio.CancelledError:
                call.cancel()
                raise
            except grpc.aio.AioRpcError as e:
                error = from_rpc_error(e)
            except Exception as e:  # pragma: no cover
                log.warning("watch stream to %s failed: %r", c._servers[i].address, e)
            finally:
                if self._call is call:
                    self._call = None
                call.cancel()
            if self._closed:
                return
            if error is not None and not is_retryable(error):
                # Not the connection: the stream itself was refused (credentials, limits).
                for w in list(self.watches.values()):
                    if not w.confirmed:
                        self.watches.pop(w.id, None)
                        self._finish(w, error)
            log.debug("watch stream to %s ended: %s; resuming", c._servers[i].address, error)
            attempt += 1
            if attempt % n == 0:
                await asyncio.sleep(backoff(attempt // n - 1))

    def _dispatch(self, resp: Any, gen: int) -> None:
        c = self.client
        if resp.progress:
            zxid = resp.header.zxid
            c.saw_zxid(zxid)
            for w in self.watches.values():
                if w.gen == gen and w.confirmed and w.next_zxid is not None and zxid + 1 > w.next_zxid:
                    w.next_zxid = zxid + 1
            return
        found = self.watches.get(resp.watch_id)
        if found is None or found.gen != gen:
            return
        w = found
        if resp.created:
            w.confirmed = True
            if w.next_zxid is None:
                w.next_zxid = resp.header.zxid + 1
            c.saw_zxid(resp.header.zxid)
            if w.first is not None and not w.first.done():
                w.first.set_result(None)
            return
        if resp.canceled:
            if resp.cancel_code == ErrorCode.COMPACTED and w.implicit_start and not w.confirmed:
                # The client's last zxid is older than the server's history: start from now,
                # as if it had none.
                w.implicit_start = False
                w.next_zxid = None
                w.gen = -1
                asyncio.ensure_future(self._create(w, gen))
                return
            self.watches.pop(w.id, None)
            if resp.cancel_code == ErrorCode.OK:
                self._finish(w, END)
                return
            err = from_code(resp.cancel_code, resp.cancel_reason or "watch cancelled", c.client_path(w.path))
            if isinstance(err, CompactedError):
                err.oldest_zxid = resp.compact_zxid
            self._finish(w, err)
            return
        if not resp.events:
            return
        zxid = max(e.zxid for e in resp.events)
        if w.next_zxid is not None and zxid < w.next_zxid:
            return  # replayed after a resume: already delivered
        for e in resp.events:
            self._deliver(
                w,
                WatchEvent(
                    type=_EVENT_TYPES.get(e.type, EventType.CHANGED),
                    path=c.client_path(e.path),
                    zxid=e.zxid,
                    stat=ZnodeStat.from_proto(e.stat) if e.HasField("stat") else None,
                    data=bytes(e.data) if w.include_data and e.type in (1, 3) else None,
                ),
            )
        w.next_zxid = zxid + 1
        c.saw_zxid(zxid)
        if w.one_shot and not w.done:
            self.watches.pop(w.id, None)
            self._finish(w, END)

    def _deliver(self, w: WatchState, item: WatchEvent) -> None:
        if w.done:
            return
        if w.queue.qsize() >= self.client.max_watch_queue:
            self.watches.pop(w.id, None)
            self._finish(
                w,
                SlowConsumerError(
                    f"watch on {item.path}: {self.client.max_watch_queue} events not consumed; cancelled",
                    path=item.path,
                ),
            )
            if w.gen == self._gen:
                asyncio.ensure_future(
                    self._write(pb.watch_pb2.WatchRequest(cancel=pb.watch_pb2.WatchCancelRequest(watch_id=w.id)))
                )
            return
        w.queue.put_nowait(item)

    def _finish(self, w: WatchState, item: Union[GroveError, _End]) -> None:
        if w.done:
            return
        w.done = True
        if w.first is not None and not w.first.done():
            if isinstance(item, GroveError):
                w.first.set_exception(item)
                # Raised from add(): nothing to iterate.
                return
            w.first.set_result(None)
        w.queue.put_nowait(item)


class AsyncWatch:
    """A watch's events, in zxid order: `async for event in watch`, or `await watch.get()`.
    Ends when closed (or, for a one-shot watch, after its event); raises the error of a
    watch the server cancelled."""

    def __init__(self, hub: WatchHub, state: WatchState) -> None:
        self._hub = hub
        self._state = state
        self._ended = False

    @property
    def id(self) -> int:
        return self._state.id

    @property
    def last_zxid(self) -> int:
        """The zxid up to which this watch has seen everything."""
        return self._state.last_zxid

    def __aiter__(self) -> "AsyncWatch":
        return self

    async def __anext__(self) -> WatchEvent:
        if self._ended:
            raise StopAsyncIteration
        item = await self._state.queue.get()
        return self._item(item, StopAsyncIteration)

    def _item(self, item: Item, stop: type) -> WatchEvent:
        if isinstance(item, _End):
            self._ended = True
            raise stop
        if isinstance(item, GroveError):
            self._ended = True
            raise item
        return item

    async def get(self, timeout: Optional[float] = None) -> WatchEvent:
        """The next event; TimeoutError if none comes within `timeout` seconds; StopAsyncIteration
        once the watch ended."""
        if self._ended:
            raise StopAsyncIteration
        try:
            item = await asyncio.wait_for(self._state.queue.get(), timeout=timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no event within {timeout} s") from None
        return self._item(item, StopAsyncIteration)

    async def close(self) -> None:
        await self._hub.cancel(self._state)

    async def __aenter__(self) -> "AsyncWatch":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
