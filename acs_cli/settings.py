"""Configuration: ACS_* environment variables owned by pydantic-settings, overridden by flags.

The API key is a SecretStr: it is read from the environment only (never from argv) and its value
is never shown in a repr, an error or a traceback.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from acs_cli.errors import ConfigError

DEFAULT_API_BASE = "http://localhost:8000/v1"

# where each setting comes from, for error messages: field -> (environment variable, flag)
_SOURCES = {
    "api_base": ("ACS_API_BASE", "--base-url"),
    "model": ("ACS_MODEL", "--model"),
    "timeout": ("ACS_TIMEOUT", "--timeout"),
    "api_key": ("ACS_API_KEY", None),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ACS_", extra="ignore", hide_input_in_errors=True)

    api_base: str = DEFAULT_API_BASE
    api_key: SecretStr | None = None
    model: str | None = None
    timeout: float = Field(default=600.0, gt=0)

    @field_validator("api_base")
    @classmethod
    def _check_base(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("api_key", "model", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value


def check_base_url(value: str) -> str:
    """Reject a base URL that cannot work, before any request is made."""
    from urllib.parse import urlsplit

    text = value.strip()
    if not text:
        raise ValueError("it is empty")
    if any(ch.isspace() for ch in text):
        raise ValueError("it contains white space")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError("it needs an http:// or https:// scheme")
    if not parts.hostname:
        raise ValueError("it has no host")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("its port is not a number from 0 to 65535") from None
    if parts.query or parts.fragment:
        raise ValueError("it must not have a query or fragment")
    return text.rstrip("/")


def load_settings(**flags: Any) -> Settings:
    """Environment, then flags on top (only the flags the user gave)."""
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "setting"
        env, flag = _SOURCES.get(field, (f"ACS_{field.upper()}", None))
        where = flag if field in given and flag else env
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        shown = ""
        if field != "api_key":
            value = given.get(field, error.get("input"))
            if isinstance(value, str | int | float):
                shown = f" {str(value)!r}"
        raise ConfigError(
            f"invalid {where}{shown}: {reason}",
            _HINTS.get(field, f"fix {where}"),
        ) from None


_HINTS = {
    "api_base": "set ACS_API_BASE (or --base-url) to the server's base URL, e.g. http://localhost:8000/v1",
    "timeout": "give --timeout / ACS_TIMEOUT a number of seconds greater than 0",
}
