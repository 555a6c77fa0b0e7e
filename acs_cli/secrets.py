"""Secrets: the API key and the credentials of a URL never reach a message, whole or in part.

Every key acs resolves (ACS_API_KEY, OPENAI_API_KEY, a key file, a key command, a plain api_key
in the config file) and every credential of a base URL is remembered for the run;
`redact(text)` replaces them in any text, and masks the `user:password@` part of any URL in it.
Redact before shortening (`redact_then_shorten`): a key cut in half no longer matches.

The short-key rule. A remembered secret of 8 characters or more is replaced wherever it occurs,
even inside a longer word. A shorter one (a local server often takes any key: "x", "test") is
replaced only as a whole token: a letter or digit at its edge must not touch another letter or
digit (as a regular expression's \b says), so the key "ab" hides "Bearer ab" and `"ab"` but
leaves "about" alone; such a key is usually not a secret worth much, and hiding it inside every
word would make messages unreadable. A message that happens to hold the same word as a short key
loses that word: showing it would show the key.

This module is a leaf: no acs imports, so errors.py, config.py and settings.py can all use it.
"""

from __future__ import annotations

import os
import re

PLACEHOLDER = "[ACS_API_KEY]"
MASK = "***"
WHOLE_WORD_BELOW = 8  # shorter secrets are replaced only as whole tokens
ENV_KEYS = ("ACS_API_KEY", "OPENAI_API_KEY")  # secrets whatever acs does with them

# the scheme and the userinfo of a URL anywhere in a text: the userinfo ends at the last "@"
# before the path, query or fragment (as urlsplit reads it). The lookbehind starts a scheme only
# at the start of a word, so a long run of letters costs one scan, not one per letter.
# Kept as strings: re compiles (and caches) them on first use, which most runs never reach.
_URL_USERINFO = r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/?#\\]*)@"
# a URL given without a scheme (a mistake acs reports, showing the value): userinfo from the start
_BARE_USERINFO = r"^()([^\s/?#\\]*)@"

_SECRETS: set[str] = set()
_PATTERN: re.Pattern[str] | None = None  # built from _SECRETS, longest first; None = rebuild


class Secret:
    """The key, as pydantic's SecretStr shows it: never its value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self._value)


def remember_secret(value: str) -> None:
    """From now on, `redact` hides this value (and its stripped form) in every text."""
    global _PATTERN
    for variant in (value, value.strip()):
        if variant.strip() and variant not in _SECRETS:  # blanks alone would hide every space
            _SECRETS.add(variant)
            _PATTERN = None


def forget_secrets() -> None:
    """Forget every remembered value (a new run in the same process, as tests do)."""
    global _PATTERN
    _SECRETS.clear()
    _PATTERN = None


def url_credentials(url: str) -> tuple[str, str | None] | None:
    """(user, password) of a URL's `user:password@` part, or None when it has none."""
    url = url.strip()
    if "@" not in url:
        return None
    match = re.match(_URL_USERINFO, url) or re.match(_BARE_USERINFO, url)
    if match is None or not match.group(2):
        return None
    user, colon, password = match.group(2).partition(":")
    return user, (password if colon else None)


def remember_url(url: str) -> None:
    """Remember a URL's credentials: the password (as written and decoded), a lone user name
    (often a token), and the Basic authorization value an HTTP client would build from them."""
    credentials = url_credentials(url)
    if credentials is None:
        return
    import base64  # only when a URL has credentials: most runs never need these modules
    from urllib.parse import unquote

    user, password = credentials
    for value in (password, unquote(password)) if password else (user, unquote(user)):
        remember_secret(value)
    basic = f"{unquote(user)}:{unquote(password or '')}".encode("utf-8", "surrogateescape")
    remember_secret(base64.b64encode(basic).decode("ascii"))


def mask_url(url: str) -> str:
    """The URL with its `user:password@` part shown as `***@` (with or without a scheme)."""
    if "@" not in url:
        return url
    masked = re.sub(_URL_USERINFO, rf"\1{MASK}@", url)
    return re.sub(_BARE_USERINFO, f"{MASK}@", masked) if "://" not in masked else masked


def redact(text: str) -> str:
    """The text with every remembered secret replaced and every URL's credentials masked."""
    for name, value in os.environ.items():
        if name.upper() in ENV_KEYS:
            remember_secret(value)
    if "@" in text:
        text = re.sub(_URL_USERINFO, rf"\1{MASK}@", text)
    pattern = _secrets_pattern()
    return pattern.sub(PLACEHOLDER, text) if pattern is not None else text


def redact_then_shorten(text: str, limit: int) -> str:
    """Redacted first, then cut to `limit` characters (an ellipsis marks the cut)."""
    text = redact(text)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _secrets_pattern() -> re.Pattern[str] | None:
    global _PATTERN
    if _PATTERN is None and _SECRETS:
        alternatives = []
        for secret in sorted(_SECRETS, key=len, reverse=True):  # a longer secret first
            escaped = re.escape(secret)
            if len(secret) < WHOLE_WORD_BELOW:  # not glued to a letter or digit, as \b would say
                before = r"(?<![A-Za-z0-9])" if _alnum(secret[0]) else ""
                after = r"(?![A-Za-z0-9])" if _alnum(secret[-1]) else ""
                escaped = before + escaped + after
            alternatives.append(escaped)
        _PATTERN = re.compile("|".join(alternatives))
    return _PATTERN


def _alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def key_problem(key: str) -> str | None:
    """Why a key (already stripped) cannot be sent in an Authorization header, or None.

    A header value is ASCII: a line break would start another header, and anything outside
    printable ASCII is either refused by the HTTP client or reaches the server garbled.
    """
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in key):
        return "it is not valid UTF-8 text"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        return "it contains a line break or another control character"
    if not key.isascii():
        return "it contains a character that is not ASCII (a key is plain ASCII text)"
    return None
