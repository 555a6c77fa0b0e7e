"""The sidecar file `OUTPUT.acs-batch`: which input (by fingerprint) the output belongs to, and the
lock that keeps a second `acs batch` from writing the same output.

The output itself stays exactly OpenAI's schema, so what a resume must check lives beside it:

    {"acs_batch": 1, "input": "/abs/path", "format": "prompts", "escapes": false,
     "sha256": "…", "size": 1234, "errors": "/abs/errors.jsonl" | null}

It is rewritten in place with one pwrite and a truncate (the lock is on this file, so it is never
renamed): a kill between the two leaves the new JSON followed by old bytes, and reading takes the
first JSON value only.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from acs_cli.errors import UsageError

SUFFIX = ".acs-batch"


@dataclass
class Fingerprint:
    input: str
    format: str
    escapes: bool
    sha256: str
    size: int
    errors: str | None = None

    def differs(self, other: Fingerprint) -> str | None:
        """Why `other` (this run) is not the input the output was made from, or None."""
        if other.sha256 != self.sha256 or other.size != self.size:
            return f"the input changed since the output was started (SHA-256 {self.sha256[:12]}…, {self.size} bytes; now {other.sha256[:12]}…, {other.size} bytes)"
        if other.format != self.format or other.escapes != self.escapes:
            return f"the input was read as {self.format}{' with -e' if self.escapes else ''}, now as {other.format}{' with -e' if other.escapes else ''}"
        return None


class StateFile:
    """The locked sidecar of one output."""

    def __init__(self, output: str) -> None:
        self.path = output + SUFFIX
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot write {self.path}: {exc.strerror or exc}", "acs batch keeps its resume record beside the output: choose a writable -o") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise UsageError(
                f"another acs batch is writing {output}",
                "wait for it to finish (or stop it), or give this run another -o",
            ) from None

    def read(self) -> Fingerprint | None:
        data = os.pread(self.fd, 1 << 16, 0)
        try:
            value: Any = json.JSONDecoder().raw_decode(data.decode("utf-8", "replace").lstrip())[0]
            return Fingerprint(**{k: value[k] for k in ("input", "format", "escapes", "sha256", "size")}, errors=value.get("errors"))
        except (ValueError, KeyError, TypeError):
            return None

    def write(self, fingerprint: Fingerprint) -> None:
        data = json.dumps({"acs_batch": 1, **asdict(fingerprint)}).encode() + b"\n"
        os.pwrite(self.fd, data, 0)
        os.ftruncate(self.fd, len(data))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # the lock goes with it
            self.fd = -1
