"""The checklist's records: one `Check` per step, the `Report` that collects them, and the small
wording helpers every step shares (times, plurals). No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acs_cli.errors import AcsError, ExitStatus

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

NAMES = (
    "base URL",
    "DNS",
    "TCP connect",
    "TLS",
    "auth",
    "model",
    "completion",
    "stream",
    "finish reason",
    "[DONE]",
    "usage",
    "first token",
    "buffering",
)
PROBE_NAMES = NAMES[NAMES.index("completion") :]  # the checks the probe completion answers
SKIPPED = "skipped: "  # every skip's detail starts so; the checklist folds a run of them into one line


@dataclass
class Check:
    name: str
    status: str
    detail: str
    hint: str | None = None
    seconds: float | None = None
    exit_status: int | None = None  # the status a failed check exits with

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "hint": self.hint,
            "seconds": None if self.seconds is None else round(self.seconds, 6),
        }


def passed(name: str, detail: str, seconds: float | None = None) -> Check:
    return Check(name, PASS, detail, None, seconds)


def warned(name: str, detail: str, hint: str, seconds: float | None = None) -> Check:
    return Check(name, WARN, detail, hint, seconds)


def failed(name: str, detail: str, hint: str | None, status: int | ExitStatus = ExitStatus.ERROR, seconds: float | None = None) -> Check:
    return Check(name, FAIL, detail, hint, seconds, int(status))


def failed_with(name: str, exc: AcsError, seconds: float | None = None) -> Check:
    return failed(name, exc.message, exc.hint, exc.status, seconds)


def skipped(name: str, reason: str) -> Check:
    return Check(name, SKIP, SKIPPED + reason)


def skip_all(names: tuple[str, ...] | list[str], reason: str) -> list[Check]:
    return [skipped(name, reason) for name in names]


class Report:
    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.base_url = ""

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def extend(self, checks: list[Check]) -> None:
        self.checks.extend(checks)

    def skip_rest(self, reason: str) -> None:
        done = {c.name for c in self.checks}
        self.extend(skip_all([name for name in NAMES if name not in done], reason))

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    @property
    def exit_status(self) -> int:
        for check in self.checks:
            if check.status == FAIL:
                return int(check.exit_status or ExitStatus.ERROR)
        return int(ExitStatus.OK)


def ms(seconds: float) -> str:
    """A duration for a reader: 3.2 ms, 45 ms, 1.25 s."""
    millis = seconds * 1000
    if millis < 10:
        return f"{millis:.1f} ms"
    if millis < 1000:
        return f"{millis:.0f} ms"
    return f"{seconds:.2f} s"


def plural(n: int, word: str) -> str:
    if word.endswith("ed"):
        return f"{n} {word}"
    return f"{n} {word}" + ("" if n == 1 else "s")


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
