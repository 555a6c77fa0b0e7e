"""The report as a checklist for people or one JSON object for machines.

Every string a check carries may hold server text (error messages, media types, model ids, the
start of a body): each goes through one `tidy` before it is shown, in both outputs: the key's
value redacted, any `user:password@` in a URL masked, control characters made visible.

The checklist: one line per check (`✓ ⚠ ✗ –`, the name, the detail), a `hint:` line under each
warning or failure, a run of checks skipped for the same reason folded into one line that names
them, and a summary line. On a terminal, long lines wrap to its width with a hanging indent
(under the detail, or under the hint's text), only at spaces, so never inside a word; piped,
each line stays whole (one line per check for grep and awk; --json is the format for programs).
"""

from __future__ import annotations

import json
import re

from acs_cli.secrets import mask_url, redact
from acs_cli.text import MIN_TEXT, make_visible, wrap

from .report import FAIL, PASS, SKIP, SKIPPED, WARN, Check, Report, plural

MARKS = {PASS: "✓", WARN: "⚠", FAIL: "✗", SKIP: "–"}
_COLOURS = {PASS: "\x1b[32m", WARN: "\x1b[33m", FAIL: "\x1b[1;31m", SKIP: "\x1b[2m"}
_HINT = "\x1b[33m"
MIN_WRAP = MIN_TEXT  # the narrowest text column the hanging indent leaves (text.wrap's rule)
# the password of a URL's user:password@ part, wherever a URL appears in a message
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")


def tidy(text: str) -> str:
    """Fit to show: no key value, no URL password, no control character unescaped."""
    return make_visible(_CREDENTIALS.sub(r"\1:***@", redact(text)))


def clean(check: Check) -> Check:
    hint = None if check.hint is None else tidy(check.hint)
    return Check(check.name, check.status, tidy(check.detail), hint, check.seconds, check.exit_status)


def shown_base(report: Report) -> str:
    return tidy(mask_url(report.base_url))


def render_json(report: Report) -> bytes:
    payload = {
        "ok": report.ok,
        "base_url": shown_base(report),
        "exit_status": report.exit_status,
        "checks": [clean(c).as_dict() for c in report.checks],
    }
    # every string is tidy: no control character is left for the encoder to pass through
    return json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8", "replace") + b"\n"


def render_text(report: Report, colour: bool, width: int | None = None) -> str:
    """The checklist; `width` is the terminal's (None: piped, no wrapping)."""
    checks = [clean(c) for c in report.checks]
    column = max((len(c.name) for c in checks), default=10)
    lines = [_paint(line, "\x1b[1m", colour) for line in _wrap(f"acs doctor · {shown_base(report)}", 2, width)]
    for group in _runs(checks):
        head = group[0]
        if len(group) > 1:
            reason = head.detail.removeprefix(SKIPPED)
            names = ", ".join(c.name for c in group)
            lines += _row(MARKS[SKIP], f"{plural(len(group), 'check')} skipped ({reason}): {names}", 2, width, _COLOURS[SKIP], colour, dim=True)
            continue
        text = f"{head.name.ljust(column)}  {head.detail}"
        lines += _row(MARKS[head.status], text, column + 4, width, _COLOURS[head.status], colour, dim=head.status == SKIP)
        if head.hint and head.status in (WARN, FAIL):
            lines += [_paint(line, _HINT, colour) for line in _wrap(" " * (column + 4) + f"hint: {head.hint}", column + 10, width)]
    summary, sgr = _summary(report)
    lines += [_paint(line, sgr, colour) for line in _wrap(summary, 2, width)]
    return "\n".join(lines) + "\n"


def _runs(checks: list[Check]) -> list[list[Check]]:
    """The checks in order, each run of skips with the same reason together."""
    runs: list[list[Check]] = []
    for check in checks:
        last = runs[-1][-1] if runs else None
        if last is not None and check.status == SKIP and last.status == SKIP and check.detail == last.detail:
            runs[-1].append(check)
        else:
            runs.append([check])
    return runs


def _row(mark: str, text: str, indent: int, width: int | None, sgr: str, colour: bool, dim: bool = False) -> list[str]:
    lines = _wrap(f"{mark} {text}", indent, width)
    if not colour:
        return lines
    first = _paint(mark, sgr, colour) + (_paint(lines[0][1:], _COLOURS[SKIP], colour) if dim else lines[0][1:])
    return [first] + [_paint(line, _COLOURS[SKIP], colour) if dim else line for line in lines[1:]]


def _wrap(line: str, indent: int, width: int | None) -> list[str]:
    """The line wrapped at spaces to `width` (acs_cli.text.wrap: a hanging indent of `indent`,
    never inside a word, preferably before a `·`); piped (`width` None) it stays whole."""
    if width is None:
        return [line]
    return wrap(line, width, indent).split("\n")


def _summary(report: Report) -> tuple[str, str]:
    """The last line and its colour."""
    counts = {s: sum(1 for c in report.checks if c.status == s) for s in (PASS, WARN, FAIL, SKIP)}
    words = ((PASS, "passed"), (WARN, "warning"), (FAIL, "failed"), (SKIP, "skipped"))
    tally = ", ".join(plural(counts[s], word) for s, word in words if counts[s])
    if report.ok:
        return f"ok: {tally}", "\x1b[32m" if not counts[WARN] else "\x1b[33m"
    first = next(c for c in report.checks if c.status == FAIL)
    return f"failed at {first.name} (exit {report.exit_status}): {tally}", "\x1b[1;31m"


def _paint(text: str, sgr: str, colour: bool) -> str:
    return f"{sgr}{text}\x1b[0m" if colour else text
