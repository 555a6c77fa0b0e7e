"""`acs doctor`'s TLS check end to end: HTTPS through a small TLS front with a certificate made
at test time, and a plain HTTP port spoken to with TLS."""

from __future__ import annotations

import select
import socket
import ssl
from pathlib import Path

import pytest

from tests.cliutil import COMPLETIONS, KEY, LoopbackListener
from tests.doctorutil import doctor, doctor_json, env, make_certificate, serve, statuses, text_checks
from tests.sse_server import ScriptedServer

# ---------------------------------------------------------------------------------------- TLS


class TLSFront(LoopbackListener):
    """An HTTPS front on 127.0.0.1: terminates TLS with the given certificate and relays the bytes
    to a plain loopback server (one thread per connection). Handshakes the client aborts are fine."""

    threaded = True
    scheme = "https"

    def __init__(self, cert: Path, key: Path, backend_port: int) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.backend_port = backend_port
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        backend = socket.create_connection(("127.0.0.1", self.backend_port))
        try:
            tls.setblocking(False)
            backend.setblocking(False)
            while not self._stop.is_set():
                ready, _, _ = select.select([tls, backend], [], [], 0.05)
                pending = [tls] if tls.pending() else []
                for src in set(ready) | set(pending):
                    dst = backend if src is tls else tls
                    try:
                        data = src.recv(65536)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        continue
                    if not data:
                        return
                    dst.setblocking(True)
                    dst.sendall(data)
                    dst.setblocking(False)
        except (ssl.SSLError, OSError):
            return
        finally:
            for s in (tls, backend):
                try:
                    s.close()
                except OSError:
                    pass

@pytest.fixture
def https_front(server: ScriptedServer, tmp_path: Path):
    def start(days: int) -> tuple[TLSFront, Path]:
        cert, key = make_certificate(tmp_path, days)
        front = TLSFront(cert, key, server.port)
        fronts.append(front)
        return front, cert

    fronts: list[TLSFront] = []
    serve(server)
    yield start
    for front in fronts:
        front.close()


def test_tls_self_signed_certificate_fails_by_default(https_front) -> None:
    front, _ = https_front(30)
    code, _, checks = doctor_json([], env(front.base_url, SSL_CERT_FILE=None, SSL_CERT_DIR=None))
    assert code == 4
    tls = checks["TLS"]
    assert tls["status"] == "fail" and "certificate" in tls["detail"] and "self-signed" in tls["detail"]
    assert "SSL_CERT_FILE" in tls["hint"]
    assert statuses(checks)["auth"] == "skip"


def test_tls_passes_with_ssl_cert_file_and_reports_the_expiry(https_front, server: ScriptedServer) -> None:
    front, cert = https_front(30)
    r = doctor([], env(front.base_url, SSL_CERT_FILE=str(cert)))
    assert r.returncode == 0, r.stdout
    status, detail, _ = text_checks(r.stdout)["TLS"]
    assert status == "pass"
    assert "CN=127.0.0.1" in detail and "O=acs doctor test" in detail
    assert "(in 29 days)" in detail or "(in 30 days)" in detail
    assert [q for q in server.requests if q.path == COMPLETIONS][0].headers["authorization"] == f"Bearer {KEY}"


def test_tls_certificate_about_to_expire_warns(https_front) -> None:
    front, cert = https_front(5)
    code, _, checks = doctor_json([], env(front.base_url, SSL_CERT_FILE=str(cert)))
    assert code == 0
    assert checks["TLS"]["status"] == "warn" and "renew" in checks["TLS"]["hint"]


class PlainHTTP400(LoopbackListener):
    """A plain HTTP port that answers anything (a TLS ClientHello too) with 400, as web servers do."""

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            except OSError:
                pass


def test_tls_against_a_plain_http_port_fails() -> None:
    plain = PlainHTTP400()
    try:
        code, _, checks = doctor_json([], env(f"https://127.0.0.1:{plain.port}/v1"))
    finally:
        plain.close()
    assert code == 4
    assert checks["TLS"]["status"] == "fail" and "handshake" in checks["TLS"]["detail"]
    assert "http://" in checks["TLS"]["hint"]
    assert checks["TLS"]["seconds"] < 5
