"""TLS towards the servers: a CA to verify them, and a client certificate the server turns
into an x509 identity."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest
from harness import Groved

import grove
from grove import Client

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def make_pki(d: Path) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"), "-days", "2", "-subj", "/CN=test ca")
    for name, subj, ext in [
        ("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "/CN=app/O=Example", "extendedKeyUsage=clientAuth"),
    ]:
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"), "-subj", subj)
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
                "-CAcreateserial", "-out", str(d / f"{name}.crt"), "-days", "2", "-extfile", str(d / f"{name}.ext"))


def test_tls_with_a_client_certificate(tmp_path: Path, make_server: Callable[..., Groved]) -> None:
    make_pki(tmp_path)
    server = make_server(
        "--tls-cert", str(tmp_path / "server.crt"), "--tls-key", str(tmp_path / "server.key"),
        "--tls-client-ca", str(tmp_path / "ca.crt"),
    )
    with Client(server.client, ca=str(tmp_path / "ca.crt"), certfile=str(tmp_path / "client.crt"),
                keyfile=str(tmp_path / "client.key")) as c:
        assert c.create("/tls", b"secret") == "/tls"
        assert c.get("/tls")[0] == b"secret"
        assert ("x509", "CN=app,O=Example") in c.who_am_i()
        with c.lock("/tls-lock") as token:
            assert token > 0
    # Verifying the server by a name its certificate was issued for; no client certificate.
    with Client(server.client, ca=str(tmp_path / "ca.crt"), server_name="localhost") as c:
        assert c.get("/tls")[0] == b"secret"
        assert all(scheme != "x509" for scheme, _ in c.who_am_i())
    # A plaintext client cannot talk to it.
    plain = Client(server.client, request_timeout=1.0)
    try:
        with pytest.raises(grove.GroveError):
            plain.start()
    finally:
        plain.close()
    with pytest.raises(grove.BadArgumentsError):
        Client(server.client, certfile=str(tmp_path / "client.crt"))
