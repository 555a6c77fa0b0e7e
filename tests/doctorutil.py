"""Helpers for the `acs doctor` tests: scripted servers for it, running it (in-process), reading
its checklist and its JSON, a certificate made at test time, and a hand-built probe record."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from acs_cli.completion_state import ChoiceState
from acs_cli.doctor import NAMES
from acs_cli.doctor.judge import Probe
from tests.cliutil import COMPLETIONS, KEY, MODELS, text_reply
from tests.helpers import run_acs
from tests.sse_server import Reply, ScriptedServer

MARKS = {"pass": "✓", "warn": "⚠", "fail": "✗", "skip": "–"}
WORDS = [f" w{i}" for i in range(8)]


def models_reply(*ids: str) -> Reply:
    return Reply.json(200, {"object": "list", "data": [{"id": i, "object": "model", "owned_by": "vllm"} for i in ids]})


def serve(server: ScriptedServer, completion: Reply | None = None, models: Reply | None = None) -> ScriptedServer:
    server.route("GET", MODELS, models or models_reply("m"))
    server.route("POST", COMPLETIONS, completion or text_reply(WORDS, delay=0.05))
    return server


def env(base: str | None, **extra: str | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {"ACS_API_KEY": KEY, "ACS_MODEL": "m"}
    if base is not None:
        out["ACS_API_BASE"] = base
    out.update(extra)
    return out


def doctor(args: list[str], environment: dict[str, str | None], timeout: float = 60) -> subprocess.CompletedProcess:
    r = run_acs(["doctor", *args], env=environment, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr
    assert KEY not in r.stdout and KEY not in r.stderr, "the key leaked"
    assert "\x1b" not in r.stdout and "\x1b" not in r.stderr, "escape codes in piped output"
    return r


def doctor_json(args: list[str], environment: dict[str, str | None], timeout: float = 60) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
    r = doctor([*args, "--json"], environment, timeout)
    payload = json.loads(r.stdout)
    assert set(payload) >= {"ok", "base_url", "checks"}
    assert payload["ok"] == (r.returncode == 0)
    checks = {c["name"]: c for c in payload["checks"]}
    assert [c["name"] for c in payload["checks"]] == list(NAMES) or payload["checks"][0]["name"] == "settings"
    for c in payload["checks"]:
        assert set(c) == {"name", "status", "detail", "hint", "seconds"}
        assert c["status"] in MARKS
        assert (c["hint"] is not None) == (c["status"] in ("warn", "fail")), c
    return r.returncode, payload, checks


def text_checks(stdout: str) -> dict[str, tuple[str, str, str | None]]:
    """name -> (status, detail, hint) from the checklist's lines."""
    out: dict[str, tuple[str, str, str | None]] = {}
    status_of = {mark: status for status, mark in MARKS.items()}
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if not line or line[0] not in status_of:
            continue
        rest = line[2:]
        folded = re.fullmatch(r"\d+ checks skipped \((.*)\): (.*)", rest)
        if folded:  # a run of checks skipped for one reason: one line naming them
            for name in folded.group(2).split(", "):
                out[name] = ("skip", f"skipped: {folded.group(1)}", None)
            continue
        name = next(n for n in sorted(NAMES, key=len, reverse=True) if rest.startswith(n))
        hint = None
        if i + 1 < len(lines) and lines[i + 1].lstrip().startswith("hint: "):
            hint = lines[i + 1].strip()[len("hint: ") :]
        out[name] = (status_of[line[0]], rest[len(name) :].strip(), hint)
    return out


def statuses(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: c["status"] for name, c in checks.items()}


def make_certificate(directory: Path, days: int) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    cert, key = directory / f"cert-{days}.pem", directory / f"key-{days}.pem"
    done = subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", str(days), "-subj", "/CN=127.0.0.1/O=acs doctor test",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0:
        pytest.skip(f"openssl cannot make a certificate here: {done.stderr.decode(errors='replace')[:200]}")
    return cert, key


STOP = [ChoiceState(0, True, "stop")]


def probe(**kw) -> Probe:
    """A healthy probe (16 text frames spread over a second, each in its own read, finished,
    [DONE], usage), with `kw` changed."""
    base = dict(
        reads=18,
        frames=18,
        text_times=[0.2 + 0.05 * i for i in range(16)],
        text_reads=16,
        preview=" Hello there",
        last_time=1.0,
        done=True,
        choices=STOP,
        usage={"prompt_tokens": 2, "completion_tokens": 16, "total_tokens": 18},
    )
    base.update(kw)
    return Probe(**base)
