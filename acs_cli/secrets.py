"""Secrets: the key values acs resolved this run, kept out of every message."""

from __future__ import annotations

import os

# every key value acs has resolved this run (environment, key file, key command), so that no
# message can show one, whatever put it there
_SECRETS: set[str] = set()


def remember_secret(value: str) -> None:
    if len(value.strip()) >= 4:
        _SECRETS.add(value)
        _SECRETS.add(value.strip())


def redact(text: str) -> str:
    """Whatever a message says, a key's value never reaches the screen."""
    for name, value in os.environ.items():
        if name.upper() == "ACS_API_KEY":
            remember_secret(value)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "[ACS_API_KEY]")
    return text


def mask_url(url: str) -> str:
    """A URL without the password of its user:password@ part."""
    from urllib.parse import urlsplit

    parts = urlsplit(url) if "://" in url else None
    if parts is None or "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return url.replace(parts.netloc, f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}", 1)
