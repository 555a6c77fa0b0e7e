"""Configuration: ACS_* environment variables owned by pydantic-settings, overridden by flags.

The API key is a secret: it is read from the environment only (never from argv) and its value is
never shown in a repr, an error or a traceback.

`Settings` (pydantic-settings) is the definition and the validator of record. Importing pydantic
costs ~0.13 s, half of a short completion's wall time, so `load_settings` first resolves the
common case itself: every value present is plainly valid by the same rules (`check_base_url`, a
positive number of seconds). Anything else goes to `Settings`, whose answer (or error) stands;
tests/test_settings.py checks that both agree on every case.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from acs_cli.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import SecretStr

DEFAULT_API_BASE = "http://localhost:8000/v1"

# where each setting comes from, for error messages: field -> (environment variable, flag)
_SOURCES = {
    "api_base": ("ACS_API_BASE", "--base-url"),
    "model": ("ACS_MODEL", "--model"),
    "timeout": ("ACS_TIMEOUT", "--timeout"),
    "api_key": ("ACS_API_KEY", None),
}
_HINT_KEY = "set ACS_API_KEY to the key alone, on one line"


FIELDS = ("api_base", "api_key", "model", "timeout")  # the fields of Settings, in order
DEFAULT_TIMEOUT = 600.0


def settings_model() -> type[Any]:
    """The pydantic-settings model (built on first use; importing pydantic is the slow part)."""
    global _MODEL
    if _MODEL is None:
        _MODEL = _build_model()
    return _MODEL


_MODEL: type[Any] | None = None


def _build_model() -> type[Any]:
    from pydantic import Field, SecretStr, field_validator
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="ACS_", extra="ignore", hide_input_in_errors=True)

        api_base: str = DEFAULT_API_BASE
        api_key: SecretStr | None = None
        model: str | None = None
        timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, allow_inf_nan=False)

        @field_validator("api_base")
        @classmethod
        def _check_base(cls, value: str) -> str:
            return check_base_url(value)

        @field_validator("api_key", "model", mode="before")
        @classmethod
        def _empty_is_unset(cls, value: Any) -> Any:
            return None if value == "" else value

        @field_validator("api_key")
        @classmethod
        def _printable_key(cls, value: Any) -> Any:
            if value is not None and not _printable(value.get_secret_value()):
                raise ValueError("it contains a line break or another control character")
            return value

    return Settings


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


@dataclass(frozen=True)
class ResolvedSettings:
    api_base: str
    api_key: Secret | SecretStr | None
    model: str | None
    timeout: float


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


_PLAIN_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def _fast(flags: dict[str, Any]) -> ResolvedSettings | None:
    """The common case without pydantic, or None when Settings must decide."""
    # pydantic-settings matches variable names case-insensitively
    env = {k.lower(): v for k, v in os.environ.items() if k[:4].lower() == "acs_"}
    base = flags.get("api_base", env.get("acs_api_base", DEFAULT_API_BASE))
    try:
        base = check_base_url(base)
    except ValueError:
        return None
    timeout = flags.get("timeout", env.get("acs_timeout"))
    if timeout is None:
        timeout = DEFAULT_TIMEOUT
    elif isinstance(timeout, str):
        if not _PLAIN_NUMBER.fullmatch(timeout):
            return None
        timeout = float(timeout)
    if not isinstance(timeout, int | float) or not timeout > 0 or timeout == float("inf"):
        return None
    key = env.get("acs_api_key") or None
    if key is not None and not _printable(key):
        return None
    model = flags.get("model", env.get("acs_model")) or None
    return ResolvedSettings(base, Secret(key) if key is not None else None, model, float(timeout))


def _printable(text: str) -> bool:
    return not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def load_settings(**flags: Any) -> ResolvedSettings:
    """Environment, then flags on top (only the flags the user gave)."""
    given = {k: v for k, v in flags.items() if v is not None}
    fast = _fast(given)
    if fast is not None:
        return fast
    return validated_settings(given)


def validated_settings(given: dict[str, Any]) -> ResolvedSettings:
    """The same through pydantic-settings: its result stands, its errors become ConfigError."""
    from pydantic import ValidationError

    try:
        settings = settings_model()(**given)
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
    return ResolvedSettings(settings.api_base, settings.api_key, settings.model, settings.timeout)


_HINTS = {
    "api_key": _HINT_KEY,
    "api_base": "set ACS_API_BASE (or --base-url) to the server's base URL, e.g. http://localhost:8000/v1",
    "timeout": "give --timeout / ACS_TIMEOUT a number of seconds greater than 0",
}
