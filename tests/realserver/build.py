#!/usr/bin/env python3
"""Build the real servers the `realserver` tests run against, once per machine, into a cache.

    python3 tests/realserver/build.py            # build what is missing, print progress and paths
    python3 tests/realserver/build.py --status   # print what is built, build nothing

What it builds, from PyPI's llama-cpp-python sdist (there is no binary wheel for linux x86_64):

- llama.cpp's own C++ `llama-server`, compiled with cmake from the sources vendored in the sdist
  (`vendor/llama.cpp`): Release, static, no tests/examples/web UI/OpenSSL, portable (no
  -march=native), `--target llama-server -j2`. About 8-10 minutes on 2 cores.
- a virtual environment with `llama-cpp-python[server]` (FastAPI + uvicorn) compiled from the
  same sdist, plus PyPI `gguf` for the model generator (tests/realserver/make_model.py). About
  5-11 minutes on 2 cores.
- the tiny generated models (under a second each), named after a hash of make_model.py so that
  a change to the generator makes new ones.

The cache is `$ACS_TESTS_CACHE` or `${XDG_CACHE_HOME:-~/.cache}/acs-tests`, one directory per
llama-cpp-python version. Each part is marked done by a stamp file written last, so an
interrupted build starts that part again (cmake resumes where it stopped). A lock file keeps two
builds (two pytest runs, CI and a developer) from building at once: the second one waits.

Only the standard library is used: CI runs this with the bare `python3` before any venv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import venv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
GGUF_VERSION = "0.19.0"
HERE = Path(__file__).resolve().parent
MAKE_MODEL = HERE / "make_model.py"

# cmake flags for llama-server (see the module docstring).
LLAMA_SERVER_CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
]
# llama-cpp-python builds libllama/libggml through scikit-build-core; the multimodal library is
# not needed by the server we start, and a portable build matches llama-server's.
LLAMA_CPP_PYTHON_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"

TIMEOUTS = {  # seconds per step; generous for a loaded 2-core machine
    "download": 900,
    "configure": 600,
    "build": 3600,
    "install": 3600,
    "model": 600,
}

# The models the tests use: name -> make_model.py arguments.
MODELS: dict[str, list[str]] = {
    # 2 blocks, 64 wide: thousands of tokens a second; for exact-output and wire tests.
    "tiny": ["--preset", "tiny"],
    # wider and deeper: tens of tokens a second, so a generation lasts long enough to interrupt.
    "slow": ["--preset", "slow"],
}


def cache_root() -> Path:
    env = os.environ.get("ACS_TESTS_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "acs-tests").resolve()


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def sdist_dir(self) -> Path:
        return self.root / "sdist"

    @property
    def src(self) -> Path:
        return self.root / "src" / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}"

    @property
    def server_build(self) -> Path:
        return self.root / "build-llama-server"

    @property
    def llama_server(self) -> Path:
        return self.root / "bin" / "llama-server"

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def venv_python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def lock(self) -> Path:
        return self.root / "build.lock"

    def stamp(self, part: str) -> Path:
        return self.root / "stamps" / f"{part}.ok"

    def model(self, name: str) -> Path:
        digest = hashlib.sha256(MAKE_MODEL.read_bytes() + repr(MODELS[name]).encode()).hexdigest()[:12]
        return self.models / f"{name}-{digest}.gguf"


def paths() -> Paths:
    return Paths(cache_root() / f"llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}")


def llama_server_ready(p: Paths | None = None) -> bool:
    p = p or paths()
    return p.stamp("llama-server").exists() and p.llama_server.exists()


def venv_ready(p: Paths | None = None) -> bool:
    p = p or paths()
    return p.stamp("venv").exists() and p.venv_python.exists()


def models_ready(p: Paths | None = None) -> bool:
    p = p or paths()
    return all(p.model(name).exists() for name in MODELS)


BUILD_COMMAND = "python3 tests/realserver/build.py"


# ---------------------------------------------------------------------------------------------
# running steps


class StepFailed(RuntimeError):
    pass


def _say(out: Callable[[str], None], msg: str) -> None:
    out(f"[realserver build] {msg}")


def _nice() -> None:
    with contextlib.suppress(OSError):
        os.nice(10)


def run_step(
    name: str,
    cmd: list[str],
    *,
    log: Path,
    out: Callable[[str], None],
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    progress: Callable[[str], str | None] | None = None,
) -> None:
    """Run ``cmd`` niced in its own process group, its output to ``log``. Print a progress line
    whenever ``progress`` turns an output line into one (at most every 15 s), and a heartbeat with
    the last output line every 30 s. On timeout kill the group and raise StepFailed."""
    log.parent.mkdir(parents=True, exist_ok=True)
    _say(out, f"{name}: {' '.join(cmd)}")
    _say(out, f"{name}: log in {log}")
    start = time.monotonic()
    last_line = [""]
    last_print = [start]
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_nice,
        )
        assert proc.stdout is not None

        def pump() -> None:
            for raw in iter(proc.stdout.readline, b""):
                logf.write(raw)
                logf.flush()
                line = raw.decode("utf-8", "replace").rstrip()
                if not line:
                    continue
                last_line[0] = line
                if progress is not None:
                    msg = progress(line)
                    now = time.monotonic()
                    if msg and now - last_print[0] >= 15:
                        last_print[0] = now
                        _say(out, f"{name}: {msg} ({now - start:.0f} s)")

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        beat = start
        try:
            while True:
                try:
                    rc = proc.wait(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if now - start > timeout:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    raise StepFailed(f"{name}: timed out after {timeout:.0f} s (log: {log})")
                if now - beat >= 30 and now - last_print[0] >= 30:
                    beat = now
                    last_print[0] = now
                    _say(out, f"{name}: still running ({now - start:.0f} s): {last_line[0][:120]}")
        except BaseException:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
        finally:
            reader.join(10)
    elapsed = time.monotonic() - start
    if rc != 0:
        tail = log.read_bytes()[-3000:].decode("utf-8", "replace")
        raise StepFailed(f"{name}: exit status {rc} after {elapsed:.0f} s; end of {log}:\n{tail}")
    _say(out, f"{name}: done in {elapsed:.0f} s")


_PERCENT = re.compile(r"^\s*\[\s*(\d+)%\]")  # make: "[ 45%] Building CXX object ..."
_STEPS = re.compile(r"^\s*\[(\d+)/(\d+)\]")  # ninja: "[23/140] /usr/bin/g++ ..."


def compile_progress(line: str) -> str | None:
    m = _PERCENT.match(line)
    if m:
        return f"{m.group(1)}% compiled"
    m = _STEPS.match(line)
    if m:
        return f"{100 * int(m.group(1)) // max(1, int(m.group(2)))}% compiled ({m.group(1)}/{m.group(2)} steps)"
    return None


def pip_progress(line: str) -> str | None:
    msg = compile_progress(line)  # pip -v shows scikit-build-core's cmake/ninja output
    if msg:
        return msg
    if line.startswith(("Collecting", "Building wheel", "Installing collected", "Successfully")):
        return line[:120]
    return None


@contextlib.contextmanager
def build_lock(p: Paths, out: Callable[[str], None]) -> Iterator[None]:
    p.root.mkdir(parents=True, exist_ok=True)
    with open(p.lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            _say(out, f"waiting for the build lock {p.lock} (held by {holder})")
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_stamp(p: Paths, part: str, info: str) -> None:
    stamp = p.stamp(part)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(info + "\n")


# ---------------------------------------------------------------------------------------------
# the parts


def ensure_sdist(p: Paths, out: Callable[[str], None]) -> Path:
    name = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
    sdist = p.sdist_dir / name
    if p.stamp("sdist").exists() and sdist.exists():
        return sdist
    tmp = p.root / "sdist.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    run_step(
        "download",
        [
            sys.executable, "-m", "pip", "download", "--no-deps",
            "--no-binary=llama-cpp-python", f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
            "-d", str(tmp), "--disable-pip-version-check",
        ],
        log=p.logs / "download.log",
        out=out,
        timeout=TIMEOUTS["download"],
    )
    got = tmp / name
    if not got.exists():
        raise StepFailed(f"download: {name} not found in {tmp}: {sorted(x.name for x in tmp.iterdir())}")
    shutil.rmtree(p.sdist_dir, ignore_errors=True)
    tmp.rename(p.sdist_dir)
    _write_stamp(p, "sdist", f"{name} sha256 {hashlib.sha256(sdist.read_bytes()).hexdigest()}")
    return sdist


def ensure_source(p: Paths, out: Callable[[str], None]) -> Path:
    if p.stamp("source").exists() and p.src.is_dir():
        return p.src
    sdist = ensure_sdist(p, out)
    _say(out, f"unpacking {sdist.name}")
    dest = p.src.parent
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(dest, filter="data")
    if not (p.src / "vendor" / "llama.cpp" / "CMakeLists.txt").exists():
        raise StepFailed(f"unpack: no vendor/llama.cpp in {p.src}")
    _write_stamp(p, "source", str(p.src))
    return p.src


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def check_tools() -> None:
    for tools in (("cmake",), ("c++", "g++", "clang++"), ("cc", "gcc", "clang")):
        if not any(shutil.which(tool) for tool in tools):
            raise StepFailed(f"the build needs `{tools[0]}` on PATH (cmake and a C and C++ compiler)")


def ensure_llama_server(p: Paths, out: Callable[[str], None]) -> Path:
    if llama_server_ready(p):
        return p.llama_server
    check_tools()
    src = ensure_source(p, out)
    t0 = time.monotonic()
    # Keep an earlier, interrupted build directory: cmake resumes where it stopped.
    run_step(
        "llama-server configure",
        ["cmake", "-S", str(src / "vendor" / "llama.cpp"), "-B", str(p.server_build), *LLAMA_SERVER_CMAKE_FLAGS],
        log=p.logs / "llama-server-configure.log",
        out=out,
        timeout=TIMEOUTS["configure"],
        env=_build_env(),
    )
    run_step(
        "llama-server build",
        ["cmake", "--build", str(p.server_build), "--config", "Release", "--target", "llama-server", "-j2"],
        log=p.logs / "llama-server-build.log",
        out=out,
        timeout=TIMEOUTS["build"],
        env=_build_env(),
        progress=compile_progress,
    )
    built = p.server_build / "bin" / "llama-server"
    if not built.exists():
        raise StepFailed(f"llama-server build: {built} was not produced")
    p.llama_server.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.llama_server.with_suffix(".tmp")
    shutil.copy2(built, tmp)
    tmp.rename(p.llama_server)
    check = subprocess.run([str(p.llama_server), "--version"], capture_output=True, timeout=60)
    version = (check.stdout + check.stderr).decode("utf-8", "replace").strip().splitlines()
    _write_stamp(p, "llama-server", f"built in {time.monotonic() - t0:.0f} s; " + " | ".join(version[:2]))
    # The object files are no longer needed (about 100 MB); keep the binary only.
    shutil.rmtree(p.server_build, ignore_errors=True)
    return p.llama_server


def ensure_venv(p: Paths, out: Callable[[str], None]) -> Path:
    if venv_ready(p):
        return p.venv_python
    check_tools()
    sdist = ensure_sdist(p, out)
    t0 = time.monotonic()
    shutil.rmtree(p.venv, ignore_errors=True)
    _say(out, f"creating the virtual environment {p.venv}")
    venv.EnvBuilder(with_pip=True, clear=True).create(p.venv)
    env = _build_env()
    env["CMAKE_ARGS"] = LLAMA_CPP_PYTHON_CMAKE_ARGS
    env.pop("PYTHONPATH", None)
    run_step(
        "llama-cpp-python install",
        [
            str(p.venv_python), "-m", "pip", "install", "--no-input", "--progress-bar", "off", "-v",
            f"{sdist}[server]", f"gguf=={GGUF_VERSION}",
        ],
        log=p.logs / "llama-cpp-python-install.log",
        out=out,
        timeout=TIMEOUTS["install"],
        env=env,
        progress=pip_progress,
    )
    check = subprocess.run(
        [str(p.venv_python), "-c", "import llama_cpp, llama_cpp.server.app, gguf; print(llama_cpp.__version__)"],
        capture_output=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    if check.returncode != 0:
        raise StepFailed("llama-cpp-python does not import:\n" + check.stderr.decode("utf-8", "replace")[-3000:])
    _write_stamp(p, "venv", f"built in {time.monotonic() - t0:.0f} s; llama_cpp {check.stdout.decode().strip()}")
    return p.venv_python


def ensure_models(p: Paths | None = None, out: Callable[[str], None] = print) -> dict[str, Path]:
    """Generate the models that are missing (needs the venv: numpy and gguf live there)."""
    p = p or paths()
    if not venv_ready(p):
        raise StepFailed(f"the model generator needs the build venv; run {BUILD_COMMAND}")
    result = {}
    for name, args in MODELS.items():
        target = p.model(name)
        result[name] = target
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        run_step(
            f"model {name}",
            [str(p.venv_python), str(MAKE_MODEL), *args, "--out", str(tmp)],
            log=p.logs / f"model-{name}.log",
            out=out,
            timeout=TIMEOUTS["model"],
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        tmp.rename(target)
    return result


def build(out: Callable[[str], None] = print, *, parts: tuple[str, ...] = ("llama-server", "venv", "models")) -> Paths:
    p = paths()
    with build_lock(p, out):
        t0 = time.monotonic()
        if "llama-server" in parts and not llama_server_ready(p):
            _say(out, "building llama-server (first run on this machine: about 8-10 minutes on 2 cores)")
            ensure_llama_server(p, out)
        if "venv" in parts and not venv_ready(p):
            _say(out, "building llama-cpp-python[server] (first run on this machine: about 5-11 minutes on 2 cores)")
            ensure_venv(p, out)
        if "models" in parts:
            ensure_models(p, out)
        if llama_server_ready(p) and venv_ready(p) and p.src.parent.exists():
            # the unpacked sources (about 200 MB) are not needed any more; the sdist stays
            p.stamp("source").unlink(missing_ok=True)
            shutil.rmtree(p.src.parent, ignore_errors=True)
        elapsed = time.monotonic() - t0
        if elapsed > 1:
            _say(out, f"all built in {elapsed:.0f} s")
    return p


def describe(p: Paths) -> list[str]:
    lines = [f"cache:            {p.root}"]
    lines.append(f"llama-server:     {p.llama_server if llama_server_ready(p) else '(not built)'}")
    lines.append(f"llama-cpp-python: {p.venv_python if venv_ready(p) else '(not built)'}")
    for name in MODELS:
        m = p.model(name)
        lines.append(f"model {name + ':':<11}{m if m.exists() else '(not generated)'}")
    for part in ("llama-server", "venv"):
        if p.stamp(part).exists():
            lines.append(f"stamp {part}: {p.stamp(part).read_text().strip()}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--status", action="store_true", help="print what is built and build nothing")
    ap.add_argument(
        "--only", choices=["llama-server", "venv", "models"], action="append",
        help="build only this part (repeatable)",
    )
    args = ap.parse_args(argv)

    def out(msg: str) -> None:
        print(msg, flush=True)

    if args.status:
        print("\n".join(describe(paths())))
        return 0 if (llama_server_ready() and venv_ready() and models_ready()) else 1
    try:
        p = build(out, parts=tuple(args.only) if args.only else ("llama-server", "venv", "models"))
    except StepFailed as exc:
        print(f"[realserver build] FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("[realserver build] interrupted; the next run resumes", file=sys.stderr, flush=True)
        return 130
    print("\n".join(describe(p)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
