"""The asyncio API (grove.aio): the same engine as the synchronous client, awaited directly."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, List, Optional

import pytest
from harness import Groved, Proxy

import grove
from grove import BadVersionError, EventType, NoNodeError, SessionState, WatchKind
from grove.aio import AsyncClient, Election


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_verbs_and_errors(server: Groved) -> None:
    async def main() -> None:
        states: List[SessionState] = []
        async with AsyncClient(server.client, timeout=4.0) as c:
            c.add_listener(states.append)
            assert c.connected and c.session_id
            assert await c.create("/aio/a", b"1", makepath=True) == "/aio/a"
            data, stat = await c.get("/aio/a")
            assert data == b"1" and stat.version == 0
            assert (await c.set("/aio/a", b"2", version=0)).version == 1
            with pytest.raises(BadVersionError):
                await c.set("/aio/a", b"3", version=0)
            with pytest.raises(NoNodeError):
                await c.get("/aio/missing")
            assert await c.get_children("/aio") == ["a"]
            eph = await c.create("/aio/e-", ephemeral=True, sequence=True)
            assert (await c.exists(eph)).ephemeral_owner == c.session_id  # type: ignore[union-attr]
            async with c.transaction() as t:
                t.create("/aio/t")
                t.delete("/aio/a")
            assert t.committed and await c.get_children("/aio") == [eph.rsplit("/", 1)[1], "t"]
            await c.delete("/aio", recursive=True)
            assert await c.exists("/aio") is None
        assert states == [SessionState.CLOSED]

    run(main())


def test_watch(server: Groved) -> None:
    async def main() -> None:
        async with AsyncClient(server.client) as c:
            await c.create("/aw", b"")
            async with await c.watch("/aw", WatchKind.SUBTREE, include_data=True) as w:
                await c.set("/aw", b"x")
                await c.create("/aw/child", b"y")
                events = [await w.get(timeout=5), await w.get(timeout=5)]
                assert [(e.type, e.path, e.data) for e in events] == [
                    (EventType.CHANGED, "/aw", b"x"),
                    (EventType.CREATED, "/aw/child", b"y"),
                ]
                assert events[0].zxid < events[1].zxid and c.last_zxid >= events[1].zxid
                with pytest.raises(TimeoutError):
                    await w.get(timeout=0.1)
            # From a zxid: the history is replayed.
            seen = []
            async for ev in await c.watch("/aw", start_zxid=events[0].zxid, one_shot=True):
                seen.append(ev.zxid)
            assert seen == [events[0].zxid]

            got: List[Optional[bytes]] = []
            changed = asyncio.Event()

            async def on_data(data: Optional[bytes], stat: Any) -> None:
                got.append(data)
                changed.set()

            dw = c.DataWatch("/aw", on_data)
            await asyncio.wait_for(dw.started.wait(), 5)
            changed.clear()
            await c.set("/aw", b"z")
            await asyncio.wait_for(changed.wait(), 5)
            assert got == [b"x", b"z"]
            dw.stop()

    run(main())


def test_lock_and_election(server: Groved) -> None:
    async def main() -> None:
        async with AsyncClient(server.client) as a, AsyncClient(server.client) as b:
            lock = a.lock("/alocks/x", "a")
            async with lock as token:
                assert token > 0 and lock.is_acquired
                other = b.lock("/alocks/x", "b")
                assert await other.acquire(blocking=False) is False
                with pytest.raises(grove.LockTimeoutError):
                    await other.acquire(timeout=0.2)
                assert await lock.contenders() == ["a"]
            assert await other.acquire(timeout=5) and other.token > token  # type: ignore[operator]
            await other.release()

            leader = Election(a, "/aelection", "a")
            follower = Election(b, "/aelection", "b")
            release = asyncio.Event()
            order: List[str] = []

            async def lead_a() -> str:
                order.append("a")
                await release.wait()
                return "a"

            async def lead_b() -> str:
                order.append("b")
                return "b"

            ta = asyncio.ensure_future(leader.run(lead_a))
            while not order:
                await asyncio.sleep(0.01)
            tb = asyncio.ensure_future(follower.run(lead_b))
            for _ in range(100):
                if len(await leader.contenders()) == 2:
                    break
                await asyncio.sleep(0.02)
            assert await leader.contenders() == ["a", "b"]
            release.set()
            assert await ta == "a" and await tb == "b" and order == ["a", "b"]
            assert follower.token > leader.token  # type: ignore[operator]

    run(main())


def test_a_leader_task_is_cancelled_on_lost(server: Groved, make_proxy: Callable[[str], Proxy]) -> None:
    proxy = make_proxy(server.client)

    async def main() -> None:
        async with AsyncClient(proxy.addr, timeout=2.0, request_timeout=3.0) as c:
            election = c.election("/acancel", "me")
            lock = c.lock("/acancel-lock")
            await lock.acquire()
            order: List[str] = []
            lock.add_lost_callback(lambda _l: order.append("lock lost"))
            c.add_listener(lambda s: order.append(s.value))

            async def lead() -> None:
                proxy.pause()
                await asyncio.sleep(30)  # cancelled at LOST

            with pytest.raises(grove.SessionExpiredError):
                await election.run(lead)
            assert lock.lost.is_set() and election.lost.is_set()
            # Holders hear before the listeners.
            assert order.index("lock lost") < order.index("LOST")
            proxy.resume()

    run(main())
