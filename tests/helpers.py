"""Run the real `acs` as a subprocess with a clean, predictable environment."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent

# Variables every run gets (before the caller's `env`). This is THE place to change the
# environment a test process sees. Anything not listed here, in PASSTHROUGH_ENV, or given by the
# caller is absent: no ACS_*, no NO_COLOR/FORCE_COLOR, no proxies, no OPENAI_* from the developer.
DEFAULT_ENV: dict[str, str] = {
    "TERM": "dumb",
    "LC_ALL": "C.UTF-8",
    "LANG": "C.UTF-8",
    "PYTHONPATH": str(REPO_ROOT),  # so `python -m acs_cli` works without an install
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "NO_PROXY": "127.0.0.1,localhost",  # never send loopback test traffic through a proxy
    "COLUMNS": "80",
}
# Copied from the test runner's own environment when set.
PASSTHROUGH_ENV: tuple[str, ...] = ("PATH", "SYSTEMROOT", "TMPDIR")


def acs_env(env: Mapping[str, str | None] | None = None, home: str | os.PathLike | None = None) -> dict[str, str]:
    """The environment run_acs uses. In ``env``, a value of None removes that variable."""
    out = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    out.update(DEFAULT_ENV)
    if home is not None:
        out["HOME"] = str(home)
    for k, v in (env or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def run_acs(
    args: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    input: str | bytes | None = None,
    timeout: float = 30,
    *,
    home: str | os.PathLike | None = None,
    cwd: str | os.PathLike | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m acs_cli *args`` and wait for it.

    HOME is a fresh empty temporary directory (removed afterwards) unless ``home`` is given;
    cwd defaults to that HOME too, so no project config from the developer's directory leaks in.
    Returns a CompletedProcess whose ``stdout``/``stderr`` are str (UTF-8, invalid bytes
    replaced) with the exact bytes in ``stdout_bytes``/``stderr_bytes``.
    Raises subprocess.TimeoutExpired (after killing the process) when ``timeout`` passes.
    """
    data = input.encode("utf-8") if isinstance(input, str) else input
    with tempfile.TemporaryDirectory(prefix="acs-home-") as tmp_home:
        the_home = home if home is not None else tmp_home
        proc = subprocess.run(
            [sys.executable, "-m", "acs_cli", *args],
            env=acs_env(env, the_home),
            input=data,
            stdin=subprocess.DEVNULL if data is None else None,
            capture_output=True,
            timeout=timeout,
            cwd=cwd if cwd is not None else the_home,
        )
    result = subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
    result.stdout_bytes = proc.stdout  # type: ignore[attr-defined]
    result.stderr_bytes = proc.stderr  # type: ignore[attr-defined]
    return result
