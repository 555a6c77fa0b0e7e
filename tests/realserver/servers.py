"""Start and stop the real servers for the `realserver` tests, and the pytest fixtures for them.

`realserver` and `slow_realserver` are session-scoped fixtures parametrized over the two servers
(llama.cpp's C++ `llama-server` and llama-cpp-python's FastAPI server). Each starts its server on
127.0.0.1 on a free port with one thread (two threads on a loaded 2-core machine make generation
collapse), waits until `GET /v1/models` answers, and stops it by its process id at the end.
`realserver` serves the tiny model (thousands of tokens a second, context 512); `slow_realserver`
the slow one (tens to hundreds of tokens a second, context 2048) for interrupting a generation.

The servers come from the build cache of tests/realserver/build.py. When a part is missing the
tests that need it are skipped with the build command, unless `ACS_REALSERVER` says otherwise:
`build` builds what is missing first (printing progress), `require` fails instead of skipping
(CI, after running the build script, so a broken build cannot pass as skipped tests).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.realserver import build

LLAMA_SERVER = "llama-server"
LLAMA_CPP_PYTHON = "llama-cpp-python"
KINDS = (LLAMA_SERVER, LLAMA_CPP_PYTHON)
MODEL_ALIAS = "tiny-llama"
SLOW_MODEL_ALIAS = "slow-llama"
START_TIMEOUT = 60.0


@dataclass
class RunningServer:
    kind: str
    model: str  # the alias the server serves the model as
    n_ctx: int
    port: int
    proc: subprocess.Popen
    log_path: Path
    argv: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def log(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def get_json(self, path: str, timeout: float = 10):
        with urllib.request.urlopen(self.origin + path, timeout=timeout) as resp:
            return json.loads(resp.read())

    def post_json(self, path: str, body: dict, timeout: float = 120):
        req = urllib.request.Request(
            self.origin + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def alive(self) -> bool:
        return self.proc.poll() is None

    def describe(self) -> str:
        tail = self.log()[-3000:]
        return f"{self.kind} (pid {self.proc.pid}, port {self.port}, exit {self.proc.poll()}); end of its log:\n{tail}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "ACS_"))}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"  # llama-cpp-python's log lines reach the log file at once
    return env


def server_argv(kind: str, model_path: Path, alias: str, n_ctx: int, port: int, slots: int = 1) -> list[str]:
    """`slots` > 1 (llama-server only): that many parallel slots sharing `n_ctx`."""
    p = build.paths()
    if kind == LLAMA_SERVER:
        return [
            str(p.llama_server), "-m", str(model_path), "--alias", alias,
            "--host", "127.0.0.1", "--port", str(port),
            "-c", str(n_ctx), "-np", str(slots), "-t", "1", "-tb", "1", "--no-warmup",
        ]
    if kind == LLAMA_CPP_PYTHON:
        return [
            str(p.venv_python), "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(n_ctx), "--n_threads", "1", "--n_threads_batch", "1",
        ]
    raise ValueError(kind)


def start_server(kind: str, model_path: Path, alias: str, n_ctx: int, log_dir: Path, slots: int = 1) -> RunningServer:
    """Start a server and wait until GET /v1/models answers 200 (retrying on another port if the
    free port was taken meanwhile). Raises RuntimeError with the server's log if it never does."""
    last_error = ""
    for attempt in range(3):
        port = free_port()
        log_path = log_dir / f"{kind}-{alias}-{port}.log"
        argv = server_argv(kind, model_path, alias, n_ctx, port, slots)
        logf = open(log_path, "wb")
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                env=_server_env(), start_new_session=True,  # a Ctrl-C to acs's group never reaches it
            )
        finally:
            logf.close()
        srv = RunningServer(kind, alias, n_ctx, port, proc, log_path, argv)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(srv.origin + "/v1/models", timeout=2) as resp:
                    if resp.status == 200:
                        return srv
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.05)
        last_error = srv.describe()
        stop_server(srv)
        if "bind" not in last_error.lower() and "address already in use" not in last_error.lower():
            break
    raise RuntimeError(f"{kind} did not answer GET /v1/models within {START_TIMEOUT:.0f} s: {last_error}")


def stop_server(srv: RunningServer) -> None:
    """SIGTERM to the server's own pid, then SIGKILL to that pid if it has not exited in 10 s."""
    if srv.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(srv.proc.pid, signal.SIGTERM)
        try:
            srv.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(srv.proc.pid, signal.SIGKILL)
            srv.proc.wait(10)


# --------------------------------------------------------------------------------------- fixtures

_MODE_VAR = "ACS_REALSERVER"


def _missing(kind: str) -> str | None:
    p = build.paths()
    if kind == LLAMA_SERVER and not build.llama_server_ready(p):
        return f"llama-server is not built in {p.root}"
    if not build.venv_ready(p):  # both need the venv: it generates the models
        return f"llama-cpp-python's venv is not built in {p.root}"
    return None


def ensure_built(kind: str, config: pytest.Config) -> dict[str, Path]:
    """The model paths, building or generating what is missing as ACS_REALSERVER says."""
    mode = os.environ.get(_MODE_VAR, "").strip().lower()
    missing = _missing(kind)
    if missing:
        if mode == "build":
            with _visible_output(config) as out:
                build.build(out)
        elif mode == "require":
            pytest.fail(f"{missing}, and {_MODE_VAR}=require: run {build.BUILD_COMMAND} first", pytrace=False)
        else:
            pytest.skip(
                f"{missing}: run `{build.BUILD_COMMAND}` once (about 20 minutes the first time on 2 cores), "
                f"or set {_MODE_VAR}=build to build it from pytest"
            )
    if build.models_ready():
        return {name: build.paths().model(name) for name in build.MODELS}
    with _visible_output(config) as out:
        with build.build_lock(build.paths(), out):
            return build.ensure_models(out=out)


@contextlib.contextmanager
def _visible_output(config: pytest.Config) -> Iterator:
    """Print build progress on the terminal even while pytest captures output."""
    capman = config.pluginmanager.getplugin("capturemanager")
    cm = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    with cm:
        def out(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)

        yield out


@pytest.fixture(scope="session")
def realserver_logs() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="acs-realserver-") as d:
        yield Path(d)


def _serve(request: pytest.FixtureRequest, logs: Path, model: str, alias: str, n_ctx: int, slots: int = 1) -> Iterator[RunningServer]:
    kind = getattr(request, "param", LLAMA_SERVER)
    models = ensure_built(kind, request.config)
    srv = start_server(kind, models[model], alias, n_ctx, logs, slots)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="session", params=KINDS)
def realserver(request: pytest.FixtureRequest, realserver_logs: Path) -> Iterator[RunningServer]:
    """A running server (each of the two in turn) serving the tiny model as `tiny-llama`, n_ctx 512."""
    yield from _serve(request, realserver_logs, "tiny", MODEL_ALIAS, 512)


@pytest.fixture(scope="session", params=KINDS)
def slow_realserver(request: pytest.FixtureRequest, realserver_logs: Path) -> Iterator[RunningServer]:
    """A running server (each of the two in turn) serving the slow model as `slow-llama`, n_ctx 2048."""
    yield from _serve(request, realserver_logs, "slow", SLOW_MODEL_ALIAS, 2048)


@pytest.fixture(scope="session")
def llama_server_4_slots(request: pytest.FixtureRequest, realserver_logs: Path) -> Iterator[RunningServer]:
    """llama-server with 4 parallel slots (`-np 4`, 512 tokens of context each) serving the slow
    model as `slow-llama`: for acs bench at concurrency 4. (The tiny model makes a token in
    about 0.1 ms, faster than llama-server's HTTP thread writes them: its stream arrives in
    bursts, so per-token times would measure the server's buffering, not its decoding.)"""
    yield from _serve(request, realserver_logs, "slow", SLOW_MODEL_ALIAS, 2048, slots=4)
