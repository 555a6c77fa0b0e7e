"""The doctor's outputs from hand-built reports (acs_cli.doctor.render): the folded line for
skipped checks, wrapping, and what every server string goes through. No server."""

from __future__ import annotations

import json
import re

import pytest

from acs_cli.doctor import render
from acs_cli.doctor.render import render_json, render_text, tidy
from acs_cli.doctor.report import NAMES, Report, failed, passed, skip_all, skipped, warned
from acs_cli.secrets import remember_secret

LONG = (
    "POST /completions answered 200 text/event-stream in 3.5 ms (a-model-with-a-long-name, max_tokens 16) · "
    "the quick brown fox jumps over the lazy dog · supercalifragilisticexpialidocious words go on and on"
)


def report(*checks, base: str = "http://127.0.0.1:8000/v1") -> Report:
    r = Report()
    r.base_url = base
    r.extend(list(checks))
    return r


def failed_at_tcp() -> Report:
    return report(
        passed("base URL", "fine"),
        passed("DNS", "resolved"),
        failed("TCP connect", "cannot connect to 127.0.0.1:1: Connection refused", "start the server", 4),
        *skip_all(NAMES[3:], "TCP connect failed"),
    )


# ---------------------------------------------------------------------------------------- skipped


def test_checks_skipped_for_one_reason_are_one_line_naming_them() -> None:
    out = render_text(failed_at_tcp(), colour=False)
    lines = out.splitlines()
    skips = [line for line in lines if line.startswith("–")]
    assert skips == ["– 10 checks skipped (TCP connect failed): TLS, auth, model, completion, stream, finish reason, [DONE], usage, first token, buffering"]
    assert lines[-1] == "failed at TCP connect (exit 4): 2 passed, 1 failed, 10 skipped"


def test_json_keeps_one_object_per_skipped_check() -> None:
    payload = json.loads(render_json(failed_at_tcp()))
    assert [c["name"] for c in payload["checks"]] == list(NAMES)
    assert all(c["status"] == "skip" and c["detail"] == "skipped: TCP connect failed" for c in payload["checks"][3:])
    assert payload["ok"] is False and payload["exit_status"] == 4


def test_a_single_skip_keeps_its_own_row_and_runs_fold_apart() -> None:
    r = report(
        passed("TCP connect", "ok"),
        skipped("TLS", "plain http://, no TLS"),
        passed("auth", "ok"),
        warned("stream", "stopped", "hint"),
        *skip_all(("finish reason", "[DONE]", "usage"), "the probe stopped reading before the end"),
        passed("first token", "ok"),
        *skip_all(("buffering",), "not an event stream"),
    )
    lines = render_text(r, colour=False).splitlines()
    assert "– TLS            skipped: plain http://, no TLS" in lines
    assert "– 3 checks skipped (the probe stopped reading before the end): finish reason, [DONE], usage" in lines
    assert "– buffering      skipped: not an event stream" in lines


# ---------------------------------------------------------------------------------------- wrapping


def test_piped_lines_are_never_wrapped() -> None:
    out = render_text(report(warned("completion", LONG, LONG)), colour=False, width=None)
    assert f"⚠ completion  {LONG}" in out.splitlines()
    assert f"              hint: {LONG}" in out.splitlines()


@pytest.mark.parametrize("width", [40, 60, 80, 100])
def test_long_lines_wrap_at_spaces_with_a_hanging_indent(width: int) -> None:
    out = render_text(report(warned("completion", LONG, LONG)), colour=False, width=width)
    lines = out.splitlines()[1:-1]
    words = LONG.split()
    for line in lines:
        assert len(line) <= width or " " not in line.strip(), line  # only a word longer than the room overflows
    assert lines[0].startswith("⚠ completion  POST")
    hint_at = next(i for i, line in enumerate(lines) if line.lstrip().startswith("hint:"))
    for line in lines[1:hint_at]:
        assert line.startswith(" " * 14) and line[14] != " "  # under the detail
    assert lines[hint_at].startswith(" " * 14 + "hint: ")
    under = min(20, width - render.MIN_WRAP)  # under the hint's text, unless that leaves too little room
    assert under > 14
    for line in lines[hint_at + 1 :]:
        assert line.startswith(" " * under) and line[under] != " "
    # never mid-word: the words come back whole, in order
    assert " ".join(" ".join(lines[:hint_at]).split())[len("⚠ completion ") :] == " ".join(words)
    assert " ".join(" ".join(lines[hint_at:]).split()) == "hint: " + " ".join(words)


def test_a_word_longer_than_the_line_stays_whole() -> None:
    url = "http://a-very-long-host-name.example.org:8000/v1/completions?with=a&long=query"
    out = render_text(report(failed("auth", f"cannot connect to {url}: refused", "start it", 4)), colour=False, width=40)
    assert any(line.strip() == url + ":" for line in out.splitlines()), out


def test_the_folded_skip_line_wraps_too() -> None:
    out = render_text(failed_at_tcp(), colour=False, width=50)
    lines = out.splitlines()
    assert all(len(line) <= 50 for line in lines), out
    start = next(i for i, line in enumerate(lines) if line.startswith("– 10 checks skipped"))
    end = next(i for i, line in enumerate(lines) if line.startswith("failed at"))
    skip_lines = lines[start:end]
    assert len(skip_lines) > 1 and all(line.startswith("  ") and line[2] != " " for line in skip_lines[1:])
    assert all(line.startswith("  ") for line in lines[end + 1 :])  # the summary wraps too
    assert "finish reason" in " ".join(skip_lines)  # a two-word name is not split across a line start


def test_colour_marks_and_hints_only_when_asked() -> None:
    plain = render_text(failed_at_tcp(), colour=False, width=80)
    coloured = render_text(failed_at_tcp(), colour=True, width=80)
    assert "\x1b[" not in plain
    assert "\x1b[32m✓\x1b[0m base URL" in coloured and "\x1b[1;31m✗\x1b[0m TCP connect" in coloured
    assert "\x1b[33m" in coloured and re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


# ---------------------------------------------------------------------------------------- server strings


HOSTILE = "evil\x1b]0;title\x07 \x1b[2J\u202eabc\r\x9b"


def test_server_strings_are_made_visible_in_text_and_json() -> None:
    r = report(failed("completion", f"HTTP 500: {HOSTILE}", f"model {HOSTILE}", 8), passed("model", f"{HOSTILE} is served"))
    out = render_text(r, colour=False)
    data = render_json(r)
    for shown in (out, data.decode()):
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown and "\r" not in shown and "\x9b" not in shown
    assert "evil\\e]0;title\\x07 \\e[2J\\u202eabc\\r\\u009b" in out
    assert json.loads(data)["checks"][0]["detail"] == "HTTP 500: evil\\e]0;title\\x07 \\e[2J\\u202eabc\\r\\u009b"


def test_a_password_in_a_url_is_masked_in_every_line_and_in_json() -> None:
    base = "http://bob:hunter2@gpu-box:8000/v1"
    r = report(
        passed("base URL", f"{base}: http, host gpu-box"),
        failed("auth", f"cannot connect to {base}/models: refused", f"check {base}", 4),
        base=base,
    )
    out = render_text(r, colour=False)
    data = render_json(r).decode()
    for shown in (out, data):
        assert "hunter2" not in shown
        assert shown.count("http://***@gpu-box:8000/v1") == 4
    assert json.loads(data)["base_url"] == "http://***@gpu-box:8000/v1"


def test_the_key_is_redacted_everywhere() -> None:
    remember_secret("sk-doctor-render-abcdef")
    r = report(failed("auth", "the server echoed sk-doctor-render-abcdef back", "key sk-doctor-render-abcdef", 6))
    assert "sk-doctor-render-abcdef" not in render_text(r, colour=False) + render_json(r).decode()
    assert "[ACS_API_KEY]" in render_text(r, colour=False)


@pytest.mark.parametrize(
    "text, shown",
    [
        ("https://u:p@h/x and ftp://a:b@c", "https://***@h/x and ftp://***@c"),
        ("http://user@host/ a lone user may be a token", "http://***@host/ a lone user may be a token"),
        ("no url: a:b@c", "no url: a:b@c"),
        ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
    ],
)
def test_tidy(text: str, shown: str) -> None:
    assert tidy(text) == shown
