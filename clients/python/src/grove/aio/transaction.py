"""Transactions (Nodes.Multi) in kazoo's shape: ops collected, applied all-or-nothing at
one zxid by commit(), which returns one result per op.

Results: the created path for a create, the new ZnodeStat for a set, True for a delete,
check or check_fence. If the transaction failed, nothing was applied and every result is an
exception instance instead: RolledBackError for the ops before the one that failed, that
op's own error (e.g. BadVersionError), RuntimeInconsistencyError for the ops after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Sequence

from .. import _proto as pb
from ..errors import from_code
from ..model import ZnodeStat
from ..security import ACL
from .client import OPTIONAL, REQUIRED, _bytes, _version, acl_to_pb, create_mode

if TYPE_CHECKING:
    from .client import AsyncClient


class TransactionBase:
    def __init__(self, client: "AsyncClient") -> None:
        self._client = client
        self._ops: List[Any] = []
        self._kinds: List[str] = []
        self._paths: List[str] = []
        self._ephemeral = False
        self.committed = False

    def _add(self, kind: str, path: str, op: Any) -> None:
        if self.committed:
            raise ValueError("the transaction was already committed")
        self._ops.append(op)
        self._kinds.append(kind)
        self._paths.append(path)

    def create(
        self,
        path: str,
        value: bytes = b"",
        acl: Optional[Sequence[ACL]] = None,
        ephemeral: bool = False,
        sequence: bool = False,
        container: bool = False,
        ttl: Optional[int] = None,
    ) -> None:
        mode = create_mode(ephemeral, sequence, container, ttl)
        self._ephemeral = self._ephemeral or ephemeral
        req = pb.nodes_pb2.CreateRequest(
            path=self._client.full_path(path), data=_bytes(value), mode=mode.name, ttl_ms=ttl or 0, acl=acl_to_pb(acl)
        )
        self._add("create", path, pb.nodes_pb2.Op(create=req))

    def delete(self, path: str, version: int = -1) -> None:
        req = pb.nodes_pb2.DeleteRequest(path=self._client.full_path(path), version=_version(version))
        self._add("delete", path, pb.nodes_pb2.Op(delete=req))

    def set_data(self, path: str, value: bytes, version: int = -1) -> None:
        req = pb.nodes_pb2.SetRequest(path=self._client.full_path(path), data=_bytes(value), version=_version(version))
        self._add("set", path, pb.nodes_pb2.Op(set=req))

    set = set_data

    def check(self, path: str, version: int = -1) -> None:
        """Passes only if the node exists (at `version`, unless -1)."""
        req = pb.nodes_pb2.CheckOp(path=self._client.full_path(path), version=_version(version))
        self._add("check", path, pb.nodes_pb2.Op(check=req))

    def check_fence(self, lock_path: str, token: int) -> None:
        """Passes only while `token` is a current grant of the lock (or semaphore, or election)
        at `lock_path`: put it first so a holder that lost its lock cannot write."""
        req = pb.nodes_pb2.CheckFenceOp(path=self._client.full_path(lock_path), token=token)
        self._add("check_fence", lock_path, pb.nodes_pb2.Op(check_fence=req))

    async def _commit(self) -> List[Any]:
        if self.committed:
            raise ValueError("the transaction was already committed")
        self.committed = True
        if not self._ops:
            return []
        c = self._client
        resp = await c._call(
            lambda s: s.nodes.Multi,
            pb.nodes_pb2.MultiRequest(ops=self._ops),
            write=True,
            session=REQUIRED if self._ephemeral else OPTIONAL,
        )
        results: List[Any] = []
        for kind, path, r in zip(self._kinds, self._paths, resp.results):
            if not resp.succeeded:
                # OK here means valid but rolled back: RolledBackError.
                message = r.message or ("rolled back: another operation of the transaction failed" if r.code == 0 else "")
                results.append(from_code(r.code, message, path))
            elif kind == "create":
                results.append(c.client_path(r.path))
            elif kind == "set":
                results.append(ZnodeStat.from_proto(r.stat))
            else:
                results.append(True)
        return results


class AsyncTransaction(TransactionBase):
    async def commit(self) -> List[Any]:
        return await self._commit()

    async def __aenter__(self) -> "AsyncTransaction":
        return self

    async def __aexit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is None and not self.committed:
            await self.commit()
