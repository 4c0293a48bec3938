"""Keeping a session alive, and the session-state rule (the same as the Rust client's).

T is the negotiated session timeout.

- One KeepAlive request every T/4 on the bidirectional Sessions.KeepAlive stream. Responses
  come in the order of the requests; each request's monotonic send time is remembered, and
  when its response arrives, `confirmed` = that send time (not the receive time).
- SUSPENDED as soon as the stream breaks, a server answers with an error (UNAVAILABLE: it is
  not in contact with a quorum; the keeper rotates to the next server and resumes there), or
  now - confirmed >= T/3.
- RECONNECTED when a keepalive is confirmed again after SUSPENDED and before LOST (possibly
  on another server), with now - confirmed < T/3 again.
- LOST when now >= confirmed + T(1 - rho) - delta, rho = 0.01 (clock-rate margin) and
  delta = T/10 (the time the application needs to stop): 0.89 T after the send time of the
  last confirmed keepalive, fired by a local timer independent of the stream; and at once
  when a server says SESSION_EXPIRED or UNKNOWN_SESSION. LOST is final for the session.

Why this is safe: the leader does not expire a session before the time it recorded the last
renewal plus T, and that time is after the renewal's send time; so a holder told LOST 0.89 T
after the send time is told before anyone else can be granted what it held.

A resume on another server (Sessions.Open with the id and secret) renews the session like a
keepalive and is confirmed the same way, by its send time.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import TYPE_CHECKING, Any, Deque, List, Optional, Protocol

import grpc

from .. import _proto as pb
from ..errors import GroveError, SessionExpiredError, from_rpc_error
from ..model import SessionState

if TYPE_CHECKING:
    from .client import AsyncClient

log = logging.getLogger("grove")

#: Clock-rate margin.
RHO = 0.01
#: Fraction of T the application is given to stop after LOST (delta = T/10).
DELTA_FRACTION = 0.1


def lost_after(timeout: float) -> float:
    """How long after the send time of the last confirmed keepalive the session is LOST:
    T(1 - rho) - delta = 0.89 T."""
    return timeout * (1 - RHO) - timeout * DELTA_FRACTION


def suspended_after(timeout: float) -> float:
    return timeout / 3


def keepalive_every(timeout: float) -> float:
    return timeout / 4


class Holder(Protocol):
    """Something held by a session (a lock, a lease, a leadership): told first when the
    session ends."""

    def _session_lost(self, session: "Session", reason: str) -> None: ...


class Session:
    """A session this client holds. Times are the event loop's monotonic clock."""

    def __init__(self, id: int, secret: bytes, timeout: float, confirmed: float) -> None:
        self.id = id
        self.secret = secret
        #: The negotiated timeout T, in seconds.
        self.timeout = timeout
        #: Send time of the last confirmed keepalive (or of the open).
        self.confirmed = confirmed
        self.lost = False
        self.lost_reason = ""
        #: When it was lost (monotonic clock, as `confirmed`).
        self.lost_at: Optional[float] = None
        self.holders: List[Holder] = []
        self.keeper: Optional[SessionKeeper] = None

    def hold(self, h: Holder) -> None:
        if h not in self.holders:
            self.holders.append(h)

    def forget(self, h: Holder) -> None:
        if h in self.holders:
            self.holders.remove(h)

    def end(self, reason: str) -> None:
        """Marks the session ended and tells everything it held, before anyone else hears."""
        if self.lost:
            return
        self.lost = True
        self.lost_reason = reason
        self.lost_at = time.monotonic()
        if self.keeper is not None:
            self.keeper.stop()
        holders, self.holders = self.holders, []
        for h in holders:
            try:
                h._session_lost(self, reason)
            except Exception:  # pragma: no cover - a holder must not stop the others hearing
                log.exception("telling %r its session was lost", h)


class _Stalled(Exception):
    """A keepalive went unanswered for T/3."""


class SessionKeeper:
    """Two tasks per session: the keepalive stream (rotating servers) and the timer that
    decides SUSPENDED and LOST."""

    def __init__(self, client: "AsyncClient", session: Session) -> None:
        self.client = client
        self.session = session
        self.suspended = False
        self._wake = asyncio.Event()
        self._tasks: List["asyncio.Task[Any]"] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._timer()),
            asyncio.ensure_future(self._keepalive()),
        ]

    def stop(self) -> None:
        current = asyncio.current_task()
        for t in self._tasks:
            if t is not current:
                t.cancel()

    # ---- the rule ----

    def confirm(self, sent: float) -> None:
        """A keepalive (or resume) sent at `sent` was answered."""
        s = self.session
        if s.lost:
            return
        if sent > s.confirmed:
            s.confirmed = sent
        now = asyncio.get_running_loop().time()
        if self.suspended and now - s.confirmed < suspended_after(s.timeout):
            self.suspended = False
            self.client._set_state(SessionState.RECONNECTED)
        self._wake.set()

    def suspend(self) -> None:
        if self.session.lost or self.suspended:
            return
        self.suspended = True
        self.client._set_state(SessionState.SUSPENDED)

    async def _timer(self) -> None:
        s = self.session
        loop = asyncio.get_running_loop()
        while not s.lost:
            now = loop.time()
            lost_at = s.confirmed + lost_after(s.timeout)
            if now >= lost_at:
                self.client._lose(
                    s,
                    f"no keepalive confirmed for {now - s.confirmed:.3f} s "
                    f"(LOST at 0.89 of the {s.timeout:g} s timeout after the last confirmed send)",
                )
                return
            suspend_at = s.confirmed + suspended_after(s.timeout)
            if now >= suspend_at:
                self.suspend()
            wake_at = lost_at if self.suspended else min(lost_at, suspend_at)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, wake_at - now))
            except asyncio.TimeoutError:
                pass

    # ---- keepalives ----

    async def _keepalive(self) -> None:
        s = self.session
        c = self.client
        loop = asyncio.get_running_loop()
        n = len(c._servers)
        index = c._current
        resume = False
        failures = 0
        while not s.lost and not c._closed:
            i = index % n
            error: Optional[GroveError] = None
            try:
                if resume:
                    await self._resume(i)
                await self._stream(i)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as e:
                error = from_rpc_error(e)
            except _Stalled:
                pass
            except Exception as e:  # pragma: no cover - keep the session alive whatever happens
                log.warning("keepalive to %s failed: %r", c._servers[i].address, e)
            if s.lost:
                return
            if isinstance(error, SessionExpiredError):
                c._lose(s, f"server {c._servers[i].address} said: {error.message}")
                return
            log.debug("keepalive stream to %s ended: %s", c._servers[i].address, error)
            self.suspend()
            resume = True
            index += 1
            failures += 1
            if failures % n == 0:
                # Every server tried: a short pause before the next round (a tenth of what is
                # left before LOST at most, so a server coming back is found in time).
                left = s.confirmed + lost_after(s.timeout) - loop.time()
                await asyncio.sleep(max(0.01, min(0.2, left / 10)))

    async def _resume(self, i: int) -> None:
        s = self.session
        c = self.client
        loop = asyncio.get_running_loop()
        sent = loop.time()
        resp = await c._servers[i].sessions.Open(
            pb.sessions_pb2.OpenSessionRequest(session_id=s.id, secret=s.secret),
            metadata=c.auth_metadata(),
            timeout=min(c.request_timeout, suspended_after(s.timeout)),
        )
        c._saw(resp.header)
        c._current = i
        self.confirm(sent)

    async def _stream(self, i: int) -> None:
        """Runs one KeepAlive stream until it breaks (raises) or stalls (_Stalled)."""
        s = self.session
        c = self.client
        loop = asyncio.get_running_loop()
        every = keepalive_every(s.timeout)
        stall = suspended_after(s.timeout)
        call = c._servers[i].sessions.KeepAlive(metadata=c.auth_metadata())
        request = pb.sessions_pb2.KeepAliveRequest(session_id=s.id, secret=s.secret)
        pending: Deque[float] = collections.deque()
        first = [True]

        async def read() -> None:
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    return
                c._saw(resp.header)
                if pending:
                    if first[0]:
                        first[0] = False
                        c._current = i
                    self.confirm(pending.popleft())

        reader = asyncio.ensure_future(read())
        try:
            next_send = loop.time()
            while True:
                if reader.done():
                    reader.result()  # raises the stream's error
                    return  # ended by the server
                now = loop.time()
                if pending and now - pending[0] >= stall:
                    raise _Stalled()
                if now >= next_send:
                    pending.append(now)
                    try:
                        await call.write(request)
                    except Exception:
                        # The stream is finished: its status is the reader's to report.
                        await asyncio.wait([reader], timeout=1.0)
                        if reader.done():
                            reader.result()
                            return
                        raise _Stalled() from None
                    next_send = now + every
                wake_at = min(next_send, pending[0] + stall) if pending else next_send
                await asyncio.wait([reader], timeout=max(0.0, wake_at - loop.time()))
        finally:
            reader.cancel()
            call.cancel()
