"""Connect strings, request ids and channels."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import grpc

from .errors import BadArgumentsError

DEFAULT_PORT = 7181

# Largest message accepted: a page of children with stats, a 1 MiB node.
MAX_MESSAGE = 64 << 20

# Reconnect quickly to a server that comes back: grpc's default backoff starts at 1 s and
# grows to 2 minutes, longer than a session lives.
CHANNEL_OPTIONS: List[Tuple[str, object]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_retries", 0),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    # One connection per client and server, not one shared process-wide: a client's failover
    # must not depend on another client's connection state.
    ("grpc.use_local_subchannel_pool", 1),
]


def parse_hosts(hosts: str) -> Tuple[List[str], Optional[str]]:
    """`host:port,host:port/chroot` -> (servers, chroot). A host without a port gets 7181."""
    text = hosts.strip()
    slash = text.find("/")
    chroot: Optional[str] = None
    if slash >= 0:
        text, chroot = text[:slash], text[slash:]
    servers = []
    for h in text.split(","):
        h = h.strip()
        if not h:
            continue
        if h.startswith("["):  # [::1]:7181
            servers.append(h if "]:" in h else f"{h}:{DEFAULT_PORT}")
        elif h.count(":") == 1:
            servers.append(h)
        elif ":" not in h:
            servers.append(f"{h}:{DEFAULT_PORT}")
        else:
            raise BadArgumentsError(f"server {h!r}: write IPv6 addresses as [addr]:port")
    if not servers:
        raise BadArgumentsError(f"no server in connect string {hosts!r}")
    if chroot is not None:
        chroot = chroot.rstrip("/")
        if not chroot:
            chroot = None
        elif "//" in chroot:
            raise BadArgumentsError(f"invalid chroot {chroot!r}")
    return servers, chroot


def backoff(retry: int) -> float:
    """The pause before retry number `retry` (0-based) of a round over the servers: 50 ms,
    doubling, at most 1 s."""
    return min(0.05 * float(2 ** min(retry, 5)), 1.0)


def new_request_id() -> str:
    """A `grove-request-id`: 32 hex digits, the issuer's millisecond clock in the first 16 (so
    servers can forget old ids in order), random bits in the rest. One id names one logical
    write across all its retries."""
    ms = int(time.time() * 1000)
    return f"{ms:016x}{secrets.randbits(64) or 1:016x}"


@dataclass(frozen=True)
class TLSConfig:
    """TLS towards the servers: the CA that signed their certificates (None: the system's
    roots), an optional client certificate and key (the server turns a verified one into an
    `x509:<subject>` identity), and the name to verify when it is not the host dialled."""

    ca: Optional[str] = None
    certfile: Optional[str] = None
    keyfile: Optional[str] = None
    server_name: Optional[str] = None

    def __post_init__(self) -> None:
        if (self.certfile is None) != (self.keyfile is None):
            raise BadArgumentsError("a TLS client certificate needs its key, and the other way round")

    def credentials(self) -> grpc.ChannelCredentials:
        def read(p: Optional[str]) -> Optional[bytes]:
            if p is None:
                return None
            try:
                return Path(p).read_bytes()
            except OSError as e:
                raise BadArgumentsError(f"TLS file {p}: {e}") from e

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca), private_key=read(self.keyfile), certificate_chain=read(self.certfile)
        )


def make_channel(address: str, tls: Optional[TLSConfig], extra: Sequence[Tuple[str, object]] = ()) -> grpc.aio.Channel:
    options = list(CHANNEL_OPTIONS) + list(extra)
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.aio.secure_channel(address, tls.credentials(), options=options)
