"""`acs batch` input: the three formats, validation before anything is sent (every problem with
its line number, exit 2), --dry-run's counts, the fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acs_cli.batch.inputs import Source, parse_line, scan, sniff_format
from tests.cliutil import ClosingListener
from tests.helpers import run_acs

BATCH_LINE = {"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "hi", "max_tokens": 4}}


def line(**changes) -> str:
    obj = json.loads(json.dumps(BATCH_LINE))
    for key, value in changes.items():
        if key.startswith("body_"):
            obj["body"][key[5:]] = value
        elif value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return json.dumps(obj)


@pytest.mark.parametrize(
    ("path", "first", "fmt"),
    [
        ("x.jsonl", line(), "batch"),
        ("x.jsonl", '{"prompt": "hi"}', "prompts"),
        ("x.jsonl", "Once upon a time", "text"),
        ("x.txt", '{"prompt": "hi"}', "text"),
        ("x.jsonl", '{"prompt": "hi"', "prompts"),  # malformed JSON still reads as JSONL: the validation names the line
        ("x.jsonl", '{"custom_id": "a", "url": "/v1/completions", "body": {', "batch"),
    ],
)
def test_sniff_format(path: str, first: str, fmt: str) -> None:
    assert sniff_format(path, first.encode()) == fmt


@pytest.mark.parametrize(
    ("raw", "fmt", "problem"),
    [
        (line(custom_id=None), "batch", "missing custom_id"),
        (line(custom_id=""), "batch", "custom_id is not a non-empty string"),
        (line(url="/v1/embeddings"), "batch", "unknown url '/v1/embeddings': acs batch sends /v1/completions and /v1/chat/completions"),
        (line(url="/v1/chat/completions"), "batch", "missing messages"),
        (line(url="/v1/chat/completions", body_messages=[]), "batch", "messages is not a non-empty list"),
        (line(url="/v1/chat/completions", body_messages=["hi"]), "batch", "messages[0] is not an object with a role"),
        (line(method="GET"), "batch", "method 'GET' is not POST"),
        (line(body_stream=True), "batch", "stream is set in the body"),
        (line(body_prompt=None), "batch", "missing prompt"),
        (line(body_prompt=""), "batch", "prompt is empty or not a string"),
        (line(body=[1]), "batch", "body is not a JSON object"),
        (line(extra=1), "batch", "unknown key 'extra'"),
        (line(body_max_tokens=-1), "batch", "max_tokens is not a whole number of at least 0"),
        ('{"prompt": "x", "stream": true}', "prompts", "stream is set"),
        ('{"custom_id": 3, "prompt": "x"}', "prompts", "custom_id is not a non-empty string"),
        ('{"max_tokens": 3}', "prompts", "missing prompt"),
        ('{"prompt": NaN}', "prompts", "malformed JSON: NaN is not JSON"),
        ('{"prompt": "x",}', "prompts", "malformed JSON: Expecting property name enclosed in double quotes (column 16)"),
        ("[1, 2]", "prompts", "not a JSON object"),
        (line(), "prompts", "looks like an OpenAI batch line"),
    ],
)
def test_problems(raw: str, fmt: str, problem: str) -> None:
    parsed = parse_line(raw.encode(), 1, fmt)
    assert isinstance(parsed, list) and any(problem in p for p in parsed), parsed


def test_lines_become_requests() -> None:
    r = parse_line(line().encode(), 3, "batch")
    assert not isinstance(r, list) and r is not None
    assert (r.custom_id, r.fields, r.kind.path) == ("a", {"prompt": "hi", "max_tokens": 4}, "completions")
    p = parse_line(b'{"prompt": ["a", "b"], "n": 2}', 7, "prompts")
    assert p is not None and not isinstance(p, list) and p.custom_id == "line-7" and p.fields == {"prompt": ["a", "b"], "n": 2}
    t = parse_line(b"a\\nb", 9, "text", escapes=True)
    assert t is not None and not isinstance(t, list) and t.fields == {"prompt": "a\nb"} and t.custom_id == "line-9"
    assert parse_line(b"   ", 2, "text") is None
    assert parse_line(b"\xff\xfe", 2, "text") == ["not valid UTF-8 (byte 1)"]


def test_scan_counts_estimates_duplicates_and_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"custom_id": "a", "prompt": "12345678"}\n\n{"prompt": "abcd", "max_tokens": 10, "n": 2}\n{"custom_id": "a", "prompt": "x"}\n')
    found = scan(Source(str(path)), "auto", default_max_tokens=100)
    assert found.format == "prompts" and found.requests == 2
    assert [(p.number, p.message) for p in found.problems] == [(4, "duplicate custom_id 'a' (first on line 1)")]
    assert (found.prompt_tokens, found.completion_tokens) == (2 + 1, 100 + 20)
    same = scan(Source(str(path)), "auto", default_max_tokens=100)
    assert same.fingerprint == found.fingerprint and len(found.fingerprint) == 64
    path.write_text(path.read_text().replace("abcd", "abce"))
    assert scan(Source(str(path)), "auto").fingerprint != found.fingerprint


def test_every_problem_with_its_line_number_exit_2_and_nothing_sent(tmp_path: Path) -> None:
    lines = [line(custom_id="a"), "not json", line(custom_id="a"), line(custom_id="b", url="/v1/responses"), line(custom_id="c", body_stream=True), line(custom_id="d", body_prompt=None)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    with ClosingListener() as server:
        r = run_acs(["batch", "in.jsonl", "-o", "out.jsonl", "--format", "batch", "--base-url", server.base_url, "-m", "m"], cwd=tmp_path)
        assert server.accepted == 0
    assert r.returncode == 2
    assert not (tmp_path / "out.jsonl").exists()
    for expected in ("in.jsonl:2: malformed JSON", "in.jsonl:3: duplicate custom_id 'a' (first on line 1)", "in.jsonl:4: unknown url '/v1/responses'", "in.jsonl:5: stream is set", "in.jsonl:6: missing prompt"):
        assert expected in r.stderr
    assert "acs: error: 5 problems in in.jsonl (listed above); nothing was sent" in r.stderr and "hint:" in r.stderr


def test_empty_input_and_bad_flags(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("\n\n")
    r = run_acs(["batch", "in.txt", "-o", "out.jsonl", "-m", "m"], cwd=tmp_path)
    assert r.returncode == 2 and "no requests in in.txt" in r.stderr
    r = run_acs(["batch", "in.txt", "-o", "-", "-m", "m"], cwd=tmp_path)
    assert r.returncode == 2 and "the output must be a file" in r.stderr
    r = run_acs(["batch", "in.txt", "-o", "in.txt", "-m", "m"], cwd=tmp_path)
    assert r.returncode == 2 and "three different files" in r.stderr
    r = run_acs(["batch", "missing.txt", "-o", "o.jsonl", "-m", "m"], cwd=tmp_path)
    assert r.returncode == 2 and "no such input file: missing.txt" in r.stderr
    r = run_acs(["batch", "in.txt", "-o", "o.jsonl", "--format", "csv"], cwd=tmp_path)
    assert r.returncode == 2 and "--format 'csv'" in r.stderr


def test_dry_run_prints_counts_and_sends_nothing(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("one two three four\nfive\n")
    (tmp_path / "out.jsonl").write_text(json.dumps({"id": "x", "custom_id": "line-1", "response": {"status_code": 200, "request_id": None, "body": {}}, "error": None}) + "\n")
    with ClosingListener() as server:
        r = run_acs(["batch", "in.txt", "-o", "out.jsonl", "--dry-run", "--max-tokens", "50", "--base-url", server.base_url], cwd=tmp_path)
        assert server.accepted == 0
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        "in.txt: 2 requests (text format)\n"
        "already in out.jsonl: 1 done, 0 failed\n"
        "to send: 1\n"
        "estimated tokens: 6 prompt (characters / 4), at most 100 completion\n"
    )
    assert not (tmp_path / "out.jsonl.acs-batch").exists()


def test_dry_run_from_stdin(tmp_path: Path) -> None:
    r = run_acs(["batch", "-", "-o", "out.jsonl", "--dry-run"], cwd=tmp_path, input='{"prompt": "a"}\n{"prompt": "b"}\n')
    assert r.returncode == 0 and r.stdout.startswith("stdin: 2 requests (prompts format)\n")


def test_chat_lines_are_chat_requests() -> None:
    from acs_cli.batch.kinds import CHAT, COMPLETIONS

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    raw = json.dumps({"custom_id": "c", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": messages, "n": 2}})
    parsed = parse_line(raw.encode(), 1, "batch")
    assert not isinstance(parsed, list) and parsed is not None and parsed.kind is CHAT and parsed.kind.path == "chat/completions"
    assert CHAT.prompt_tokens(parsed.fields) == ((9 + 3) // 4 + 4 + (11 + 3) // 4 + 4, 1) and CHAT.choices(parsed.fields) == 2
    prompt_style = parse_line(json.dumps({"messages": messages}).encode(), 4, "prompts")
    assert not isinstance(prompt_style, list) and prompt_style is not None and prompt_style.kind is CHAT and prompt_style.custom_id == "line-4"
    plain = parse_line(b'{"prompt": "x"}', 5, "prompts")
    assert not isinstance(plain, list) and plain is not None and plain.kind is COMPLETIONS
