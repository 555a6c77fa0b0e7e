"""A real nginx (the distribution's package) in front of the real llama-server: `acs doctor` sees
the buffering nginx does with `proxy_buffering on` and passes with it off, and `acs complete`
streams the exact text through it either way.

nginx runs as this user from a config generated per test in a temporary directory (pid, logs and
temporary files inside it), on 127.0.0.1 at a free port, terminating TLS with a certificate made
at test time, and is stopped by its pid. TLS matters: measured with nginx 1.22, buffered proxying
does not flush each upstream read, and over plain http the kernel still sent each read at once
(frames arrived one per read, buffering on or off); over TLS, nginx gathers unflushed output into
records of `ssl_buffer_size` (16 KB by default), so a short answer arrives all at once at the end.
llama-server sends `X-Accel-Buffering: no`, which turns nginx's buffering off for its answers;
`proxy_ignore_headers X-Accel-Buffering` makes nginx buffer them anyway, as a proxy that does not
know the header would.

Marked `realserver` (the slow model, so the answer takes long enough to judge); without `nginx`
on PATH the tests are skipped (failed with ACS_REALSERVER=require: `.ci/run` installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doctorutil import make_certificate
from tests.helpers import run_acs
from tests.realserver.servers import (  # noqa: F401  (fixtures)
    LLAMA_SERVER,
    RunningServer,
    free_port,
    realserver_logs,
    slow_realserver,
    stop_server,
)
from tests.test_realserver import ACS_TIMEOUT, complete_args, non_streaming

pytestmark = [pytest.mark.realserver, pytest.mark.parametrize("slow_realserver", [LLAMA_SERVER], indirect=True)]

MAX_TOKENS = 64  # doctor's probe: about 16 KB of frames (one TLS buffer), long enough to judge (0.3 to 1 s here)
TEXT_TOKENS = 32  # acs complete's: exactness needs no more
SETTINGS = {
    # name: (the location's directives, whether doctor warns about buffering)
    "buffering on": ("proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;", True),
    "buffering off": ("proxy_buffering off;", False),
    "buffering on, X-Accel-Buffering honoured": ("proxy_buffering on;", False),
}


class Nginx:
    """nginx in the foreground from a generated config, reverse-proxying https://127.0.0.1:port to
    the upstream; stopped by its pid (SIGTERM, then SIGKILL after 10 s)."""

    def __init__(self, prefix: Path, upstream: int, setting: str, cert: Path, key: Path) -> None:
        self.prefix = prefix
        self.setting = setting
        directives, self.buffers = SETTINGS[setting]
        self.port = free_port()
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""  # workers as this user, not nobody
        temp = " ".join(f"{kind}_temp_path {prefix}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = prefix / "nginx.conf"
        conf.write_text(
            f"""{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    {temp}
    server {{
        listen 127.0.0.1:{self.port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            {directives}
        }}
    }}
}}
"""
        )
        argv = ["nginx", "-c", str(conf), "-p", str(prefix), "-e", str(prefix / "error.log"), "-g", "daemon off;"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_listening()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1"

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in (self.prefix / "error.log", self.prefix / "access.log") if p.exists())

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nginx did not listen on 127.0.0.1:{self.port} (exit {self.proc.poll()}):\n{self.log()}")

    def stop(self) -> None:
        stop_server(self)  # it needs only .proc: SIGTERM to the pid, SIGKILL after 10 s


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("nginx-tls"), 30)


@pytest.fixture(params=list(SETTINGS))
def nginx(request: pytest.FixtureRequest, slow_realserver: RunningServer, certificate: tuple[Path, Path], tmp_path: Path) -> Iterator[Nginx]:
    if shutil.which("nginx") is None:
        missing = "nginx is not installed: apt-get install -y nginx (.ci/run does)"
        if os.environ.get("ACS_REALSERVER", "").strip().lower() == "require":
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    proxy = Nginx(tmp_path, slow_realserver.port, request.param, *certificate)
    try:
        yield proxy
    finally:
        proxy.stop()


def acs_env(proxy: Nginx, certificate: tuple[Path, Path]) -> dict[str, str | None]:
    return {"ACS_API_BASE": proxy.base_url, "SSL_CERT_FILE": str(certificate[0])}


def test_doctor_sees_nginx_buffering(nginx: Nginx, certificate: tuple[Path, Path]) -> None:
    r = run_acs(["doctor", "--json", "--max-tokens", str(MAX_TOKENS)], env=acs_env(nginx, certificate), timeout=ACS_TIMEOUT)
    report = json.loads(r.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert r.returncode == 0, r.stdout + nginx.log()
    assert {c["status"] for n, c in checks.items() if n != "buffering"} == {"pass"}, checks
    buffering = checks["buffering"]
    if nginx.buffers:
        assert buffering["status"] == "warn", buffering
        assert "frames arrive all at once: a proxy is buffering the stream" in buffering["detail"] or "bursts" in buffering["detail"]
        assert "proxy_buffering off;" in buffering["hint"]
    else:
        assert buffering["status"] == "pass" and "frames arrive as they are generated" in buffering["detail"], buffering


@pytest.fixture(scope="module")
def expected(slow_realserver: RunningServer) -> str:
    """The text of the same request, not streamed, straight from llama-server (once)."""
    text = non_streaming(slow_realserver, max_tokens=TEXT_TOKENS)["choices"][0]["text"]
    assert len(text) >= 20, text
    return text


def test_complete_streams_the_exact_text_through_nginx(nginx: Nginx, slow_realserver: RunningServer, certificate: tuple[Path, Path], expected: str) -> None:
    r = run_acs(complete_args(slow_realserver, max_tokens=TEXT_TOKENS), env=acs_env(nginx, certificate), timeout=ACS_TIMEOUT)
    assert r.returncode == 0, r.stderr + nginx.log()
    assert r.stdout_bytes == expected.encode("utf-8")
    assert "finish: length" in r.stderr
