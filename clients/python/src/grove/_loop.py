"""The event loop the synchronous client runs the asyncio engine on, in a thread of its own,
and the thread its callbacks run on."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Awaitable, Callable, Coroutine, Optional, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: Optional[float] = None) -> T:
        """Runs `coro` on the loop and waits for its result in the calling thread. Interrupting
        the wait (KeyboardInterrupt) cancels it."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a blocking Grove call from the client's event loop: use grove.aio there")
        if not self.thread.is_alive():
            coro.close()
            from .errors import ClientClosedError

            raise ClientClosedError("the client is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except BaseException:
            fut.cancel()
            raise

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            if threading.current_thread() is not self.thread:
                self.thread.join(timeout=10)


class EventThread:
    """Runs the synchronous client's callbacks (state listeners, watch callbacks, DataWatch and
    ChildrenWatch functions) one at a time, in order, as kazoo's event thread does."""

    def __init__(self, name: str) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._thread_ident: Optional[int] = None
        self._pool.submit(self._remember).result()

    def _remember(self) -> None:
        self._thread_ident = threading.get_ident()

    def in_thread(self) -> bool:
        return threading.get_ident() == self._thread_ident

    def submit(self, fn: Callable[..., T], *args: Any) -> "concurrent.futures.Future[T]":
        return self._pool.submit(fn, *args)

    async def invoke(self, fn: Callable[..., T], *args: Any) -> T:
        """Calls fn on this thread from the event loop, and waits (without blocking the loop)."""
        return await asyncio.wrap_future(self._pool.submit(fn, *args))

    def shutdown(self, drain: float = 5.0) -> None:
        """Stops the thread once the callbacks already queued have run (waiting at most `drain`
        seconds, and not at all from a callback itself)."""
        if not self.in_thread():
            try:
                self._pool.submit(lambda: None).result(timeout=drain)
            except concurrent.futures.TimeoutError:
                pass
        self._pool.shutdown(wait=False)


def awaitable_on(events: EventThread, fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """fn as a callback the engine awaits, run on the event thread."""

    def call(*args: Any) -> Awaitable[Any]:
        return asyncio.wrap_future(events.submit(fn, *args))

    return call
