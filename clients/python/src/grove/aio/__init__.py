"""The asyncio API: AsyncClient and its recipes, with the same verbs as grove.Client.

    from grove.aio import AsyncClient

    async with AsyncClient("127.0.0.1:7181", timeout=10.0) as client:
        await client.create("/config", b"v1", makepath=True)
        async with client.lock("/locks/deploy") as token:
            ...
"""

from ._watch import AsyncWatch
from .client import AsyncClient
from .recipes import AsyncChildrenWatch, AsyncDataWatch, AsyncElection, AsyncLock, AsyncSemaphore
from .transaction import AsyncTransaction

# kazoo-style names: Election(client, path, identifier) and the rest.
Lock = AsyncLock
Semaphore = AsyncSemaphore
Election = AsyncElection
DataWatch = AsyncDataWatch
ChildrenWatch = AsyncChildrenWatch


def ReadLock(client: AsyncClient, path: str, identifier: str = "") -> AsyncLock:
    return AsyncLock(client, path, identifier, kind="read")


def WriteLock(client: AsyncClient, path: str, identifier: str = "") -> AsyncLock:
    return AsyncLock(client, path, identifier, kind="write")


__all__ = [
    "AsyncChildrenWatch",
    "AsyncClient",
    "AsyncDataWatch",
    "AsyncElection",
    "AsyncLock",
    "AsyncSemaphore",
    "AsyncTransaction",
    "AsyncWatch",
    "ChildrenWatch",
    "DataWatch",
    "Election",
    "Lock",
    "ReadLock",
    "Semaphore",
    "WriteLock",
]
