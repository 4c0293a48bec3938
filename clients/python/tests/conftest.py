"""Fixtures: groved processes and proxies, each stopped (by PID) or closed when its test or
module ends. The helpers are in harness.py."""

from __future__ import annotations

import os

# Before grpc is imported: Python 3.9's subprocess forks (3.10+ uses vfork), which runs
# grpc's fork handlers in the child before groved is exec'd; they can hang it there.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from pathlib import Path  # noqa: E402
from typing import Callable, Iterator, List, Optional

import pytest  # noqa: E402
from harness import TEST_SERVER, Cluster, Groved, Proxy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Groved]:
    """A standalone server shared by a module's tests (each test uses its own paths)."""
    s = Groved(tmp_path_factory.mktemp("groved"), [*TEST_SERVER, "--max-data-bytes", "65536"])
    try:
        yield s
    finally:
        s.kill9()


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    made: List[Cluster] = []

    def make(n: int = 3, extra: Optional[List[str]] = None) -> Cluster:
        c = Cluster(tmp_path / f"cluster{len(made)}", n, [*TEST_SERVER, *(extra or [])])
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.kill_all()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Groved]]:
    """Standalone servers of a test's own, with extra flags."""
    made: List[Groved] = []

    def make(*extra: str) -> Groved:
        s = Groved(tmp_path / f"groved{len(made)}", [*TEST_SERVER, *extra])
        made.append(s)
        return s

    try:
        yield make
    finally:
        for s in made:
            s.kill9()


@pytest.fixture
def make_proxy() -> Iterator[Callable[[str], Proxy]]:
    made: List[Proxy] = []

    def make(target: str) -> Proxy:
        p = Proxy(target)
        made.append(p)
        return p

    try:
        yield make
    finally:
        for p in made:
            p.close()


