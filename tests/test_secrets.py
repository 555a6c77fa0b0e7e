"""Secrets: URL credentials masked in any text, keys redacted whatever their length (short ones
as whole tokens), redaction before shortening, keys that cannot go in a header refused."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_cli import secrets
from acs_cli.secrets import (
    PLACEHOLDER,
    Secret,
    key_problem,
    mask_url,
    redact,
    redact_then_shorten,
    remember_secret,
    remember_url,
)


@contextmanager
def fresh_secrets() -> Iterator[None]:
    """No key remembered by an earlier test, and none of ours left for a later one."""
    saved, saved_env = set(secrets._SECRETS), dict(os.environ)
    secrets._SECRETS.clear()
    secrets._PATTERN = None
    for name in list(os.environ):
        if name.upper() in secrets.ENV_KEYS:
            del os.environ[name]
    try:
        yield
    finally:
        secrets._SECRETS.clear()
        secrets._SECRETS.update(saved)
        secrets._PATTERN = None
        os.environ.clear()
        os.environ.update(saved_env)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    with fresh_secrets():
        yield


@pytest.mark.parametrize(
    "url,masked",
    [
        ("http://user:pass@h:8000/v1", "http://***@h:8000/v1"),
        ("https://tok@h/v1", "https://***@h/v1"),
        ("http://u:p@ss@h/v1", "http://***@h/v1"),  # the userinfo ends at the last @
        ("http://u:p@[::1]:8000/v1", "http://***@[::1]:8000/v1"),
        ("user:pass@h:8000/v1", "***@h:8000/v1"),  # no scheme (a mistake acs reports, showing it)
        ("http://h:8000/v1", "http://h:8000/v1"),
        ("http://h/v1/a@b", "http://h/v1/a@b"),  # an @ in the path is no credential
        ("http://h/v1?x=a@b", "http://h/v1?x=a@b"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_redact_masks_url_credentials_anywhere_in_a_text() -> None:
    text = "cannot connect to http://alice:s3cret@h:1/v1 (via HTTPS://bob:pw2@proxy:3128)"
    assert redact(text) == "cannot connect to http://***@h:1/v1 (via HTTPS://***@proxy:3128)"


def test_remembered_url_credentials_are_redacted_in_every_form() -> None:
    remember_url("http://alice:s%3Acret-pw@h/v1")
    basic = base64.b64encode(b"alice:s:cret-pw").decode()
    text = f"password s%3Acret-pw, decoded s:cret-pw, header Authorization: Basic {basic}"
    shown = redact(text)
    assert "cret-pw" not in shown and basic not in shown


def test_a_lone_user_name_is_treated_as_a_token() -> None:
    remember_url("https://ghp_0123456789abcdef@h/v1")
    assert "ghp_0123456789abcdef" not in redact("token ghp_0123456789abcdef rejected")


def test_long_keys_are_redacted_wherever_they_occur() -> None:
    remember_secret("sk-0123456789")
    assert redact("x-sk-0123456789-y and sk-0123456789") == f"x-{PLACEHOLDER}-y and {PLACEHOLDER}"


@pytest.mark.parametrize("key", ["x", "ab", "abc", "test", "1234567"])
def test_short_keys_are_redacted_as_whole_tokens(key: str) -> None:
    remember_secret(key)
    assert redact(f"Bearer {key}") == f"Bearer {PLACEHOLDER}"
    assert redact(f'{{"key": "{key}"}}') == f'{{"key": "{PLACEHOLDER}"}}'
    assert redact(f"({key})") == f"({PLACEHOLDER})"
    # inside a longer word it is left alone: the text stays readable
    word = f"pre{key}post"
    assert redact(word) == word


def test_normal_text_is_untouched_by_a_short_key() -> None:
    remember_secret("a")
    text = "cannot connect to the server at localhost: connection refused"
    assert redact(text) == text


def test_the_environment_keys_are_secrets_whether_used_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-never-shown")
    monkeypatch.setenv("acs_api_key", "sk-acs-never-shown")
    assert redact("a sk-openai-never-shown b sk-acs-never-shown") == f"a {PLACEHOLDER} b {PLACEHOLDER}"


def test_redact_then_shorten_never_leaves_a_piece_of_the_key() -> None:
    key = "sk-abcdefghijklmnopqrstuvwxyz"
    remember_secret(key)
    for cut in range(1, 60):
        text = "x" * cut + key + " tail"
        shown = redact_then_shorten(text, 40)
        assert len(shown) <= 40
        assert not any(key[i : i + 6] in shown for i in range(len(key) - 5)), shown


def test_redact_is_linear_on_long_runs() -> None:
    import time

    started = time.perf_counter()
    redact("a" * 500_000 + "://" + "b" * 500_000)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "key,problem",
    [
        ("sk-é", "not ASCII"),
        ("sk\u200b", "not ASCII"),
        ("sk\n1", "control character"),
        ("sk\x1b[0m", "control character"),
        ("sk\x7f", "control character"),
        ("sk\udcff", "UTF-8"),
        ("sk-fine_KEY.0123+/=", None),
        ("with space", None),
    ],
)
def test_key_problem(key: str, problem: str | None) -> None:
    found = key_problem(key)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_secret_shows_no_value() -> None:
    s = Secret("sk-hidden")
    assert "sk-hidden" not in repr(s) + str(s) and len(s) == 9 and s.get_secret_value() == "sk-hidden"


TOKEN = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=24)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


def _alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _standing_copies(key: str, text: str) -> list[int]:
    """Where the key stands in the text: anywhere when 8 characters or more, else as a token."""
    text = text.replace(PLACEHOLDER, " ")  # the placeholder may spell a short key ("KEY")
    found, start = [], text.find(key)
    while start >= 0:
        end = start + len(key)
        glued_before = start > 0 and _alnum(key[0]) and _alnum(text[start - 1])
        glued_after = end < len(text) and _alnum(key[-1]) and _alnum(text[end])
        whole = not glued_before and not glued_after
        if len(key) >= secrets.WHOLE_WORD_BELOW or whole:
            found.append(start)
        start = text.find(key, start + 1)
    return found


@settings(max_examples=300, deadline=None)
@given(key=TOKEN, pieces=st.lists(st.one_of(TEXT, st.just("KEY"), st.sampled_from([" ", "(", "=", '"'])), max_size=6))
def test_a_remembered_key_never_stands_in_the_output(key: str, pieces: list[str]) -> None:
    """Wherever the key is put in a text, the redacted text holds no copy of it: none at all
    for a key of 8 characters or more, none standing as a token for a shorter one."""
    with fresh_secrets():
        remember_secret(key)
        text = "".join(key if piece == "KEY" else piece for piece in pieces)
        assert _standing_copies(key, redact(text)) == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_text_without_secrets_or_urls_is_unchanged(text: str) -> None:
    with fresh_secrets():
        if "://" not in text:
            assert redact(text) == text


def test_a_blank_key_hides_nothing() -> None:
    """A key of blanks is no secret worth hiding: remembering it would hide every space."""
    remember_secret("   ")
    remember_secret(" ")
    assert redact("a b  c") == "a b  c"
