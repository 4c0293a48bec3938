"""ACLs, as kazoo.security spells them.

An ACL entry grants permissions (READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16) to an
identity: `world:anyone`, `digest:user:base64(sha1(user:password))` (callers sending those
credentials, see the client's `auth_data`), `ip:10.0.0.0/8`, `x509:CN=...` (a verified client
certificate), or, when setting an ACL, `auth:` (the caller's own digest/x509 identities).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import List


class Permissions:
    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


@dataclass(frozen=True)
class Id:
    scheme: str
    id: str


@dataclass(frozen=True)
class ACL:
    perms: int
    id: Id

    @property
    def acl_list(self) -> List[str]:
        """The permission names, as kazoo lists them."""
        names = [("READ", Permissions.READ), ("WRITE", Permissions.WRITE), ("CREATE", Permissions.CREATE),
                 ("DELETE", Permissions.DELETE), ("ADMIN", Permissions.ADMIN)]
        if self.perms == Permissions.ALL:
            return ["ALL"]
        return [n for n, bit in names if self.perms & bit]


ANYONE_ID_UNSAFE = Id("world", "anyone")
AUTH_IDS = Id("auth", "")
OPEN_ACL_UNSAFE = [ACL(Permissions.ALL, ANYONE_ID_UNSAFE)]
CREATOR_ALL_ACL = [ACL(Permissions.ALL, AUTH_IDS)]
READ_ACL_UNSAFE = [ACL(Permissions.READ, ANYONE_ID_UNSAFE)]


def make_digest_acl_credential(username: str, password: str) -> str:
    """ZooKeeper's digest id: `user:base64(sha1("user:password"))`."""
    digest = hashlib.sha1(f"{username}:{password}".encode()).digest()
    return f"{username}:{base64.b64encode(digest).decode()}"


def make_acl(
    scheme: str,
    credential: str,
    read: bool = False,
    write: bool = False,
    create: bool = False,
    delete: bool = False,
    admin: bool = False,
    all: bool = False,
) -> ACL:
    if all:
        perms = Permissions.ALL
    else:
        perms = (
            (Permissions.READ if read else 0)
            | (Permissions.WRITE if write else 0)
            | (Permissions.CREATE if create else 0)
            | (Permissions.DELETE if delete else 0)
            | (Permissions.ADMIN if admin else 0)
        )
    return ACL(perms, Id(scheme, credential))


def make_digest_acl(
    username: str,
    password: str,
    read: bool = False,
    write: bool = False,
    create: bool = False,
    delete: bool = False,
    admin: bool = False,
    all: bool = False,
) -> ACL:
    """An entry for a digest user (the password is hashed here; only the hash is sent)."""
    return make_acl(
        "digest", make_digest_acl_credential(username, password), read, write, create, delete, admin, all
    )
