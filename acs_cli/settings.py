"""Configuration: flags > ACS_* environment > the selected profile > the config file's defaults >
built-in defaults, each layer a pydantic-settings source.

The API key is a secret: it comes from ACS_API_KEY, or from the config file's api_key_file or
api_key_command (a plain api_key there only draws a warning when others can read the file); never
from argv, and its value is never shown in a repr, an error or a traceback.

`Settings` (pydantic-settings) is the definition and the validator of record. Importing pydantic
costs ~0.13 s, half of a short completion's wall time, so `load_settings` first resolves the
common case itself: the same layers (the config file read the same way), every value present
plainly valid as it stands by the same rules (`check_base_url`, a positive number of seconds,
numbers that are numbers). Anything else goes to `Settings`, whose answer (or error) stands;
tests/test_settings.py checks that both agree on every case, with and without a config file.
"""

from __future__ import annotations

import contextvars
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from acs_cli.config import REQUEST_KEYS, ConfigFile, config_path, read_config, read_key, select_profile
from acs_cli.errors import ConfigError
from acs_cli.secrets import remember_secret

if TYPE_CHECKING:
    from pydantic import SecretStr

DEFAULT_API_BASE = "http://localhost:8000/v1"
DEFAULT_MAX_TOKENS = 256

# where each setting comes from, for error messages: field -> (environment variable, flag)
_SOURCES = {
    "api_base": ("ACS_API_BASE", "--base-url"),
    "model": ("ACS_MODEL", "--model"),
    "timeout": ("ACS_TIMEOUT", "--timeout"),
    "api_key": ("ACS_API_KEY", None),
    "profile": ("ACS_PROFILE", "--profile"),
}
_HINT_KEY = "set ACS_API_KEY to the key alone, on one line"


# the fields of Settings, in order
FIELDS = ("api_base", "api_key", "api_key_file", "api_key_command", "model", "timeout", "profile", *REQUEST_KEYS)
_BASIC = ("acs_api_base", "acs_api_key", "acs_model", "acs_timeout")  # what the shortcut resolves
DEFAULT_TIMEOUT = 600.0


def settings_model() -> type[Any]:
    """The pydantic-settings model (built on first use; importing pydantic is the slow part)."""
    global _MODEL
    if _MODEL is None:
        _MODEL = _build_model()
    return _MODEL


_MODEL: type[Any] | None = None


def _build_model() -> type[Any]:
    from pydantic import Field, SecretStr, field_validator  # noqa: F401  (pydantic resolves the annotations by name)
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="ACS_", extra="ignore", hide_input_in_errors=True)

        api_base: str = DEFAULT_API_BASE
        api_key: SecretStr | None = None
        api_key_file: str | None = None
        api_key_command: str | None = None
        model: str | None = None
        timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, allow_inf_nan=False)
        profile: str | None = None
        max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=0)
        temperature: float | None = None
        top_p: float | None = None
        stop: list[str] = Field(default_factory=list)
        seed: int | None = None
        presence_penalty: float | None = None
        frequency_penalty: float | None = None
        params: dict[str, Any] = Field(default_factory=dict)

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: Any, init_settings: Any, env_settings: Any, dotenv_settings: Any, file_secret_settings: Any
        ) -> tuple[Any, ...]:
            layers = _LAYERS.get()
            return (
                init_settings,
                env_settings,
                _TableSource(settings_cls, layers[0]),
                _TableSource(settings_cls, layers[1]),
            )

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

    from pydantic_settings import PydanticBaseSettingsSource

    class _TableSource(PydanticBaseSettingsSource):
        """One layer of the config file: the selected profile, or the file's top-level defaults."""

        def __init__(self, settings_cls: Any, table: dict[str, Any]) -> None:
            super().__init__(settings_cls)
            self.table = table

        def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
            return self.table.get(field_name), field_name, False

        def __call__(self) -> dict[str, Any]:
            return dict(self.table)

    return Settings


# the (profile, file defaults) tables the sources of the resolution under way read
_LAYERS: contextvars.ContextVar[tuple[dict[str, Any], dict[str, Any]]] = contextvars.ContextVar("acs_layers")


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
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    warnings: tuple[str, ...] = ()
    # where each value came from: "flag", "env", "profile NAME", "file", "default"
    sources: dict[str, str] = field(default_factory=dict)
    config_file: str | None = None


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
    """The common case without pydantic, or None when Settings must decide.

    It takes the same layers as Settings (flags, environment, the profile, the file's defaults)
    but only values that are plainly valid as they stand; anything else is left to pydantic.
    """
    # pydantic-settings matches variable names case-insensitively
    env = {k.lower(): v for k, v in os.environ.items() if k[:4].lower() == "acs_"}
    if any(f"acs_{name}" in env for name in FIELDS if f"acs_{name}" not in _BASIC):
        return None  # ACS_PROFILE, ACS_MAX_TOKENS, ...: Settings decides
    if "profile" in flags:
        return None
    config = read_config() if config_path().exists() else None
    profile_name, profile = select_profile(config, None)
    defaults = config.defaults if config else {}

    def layered(name: str, default: Any = None) -> Any:
        if name in flags:
            return flags[name]
        if f"acs_{name}" in env:
            return env[f"acs_{name}"]
        return profile.get(name, defaults.get(name, default))

    values: dict[str, Any] = {}
    try:
        values["api_base"] = check_base_url(_plain(layered("api_base", DEFAULT_API_BASE), str))
    except ValueError:
        return None
    timeout = layered("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, str):
        if not _PLAIN_NUMBER.fullmatch(timeout):
            return None
        timeout = float(timeout)
    if _plain(timeout, int, float) is None or not 0 < timeout < float("inf"):
        return None
    values["timeout"] = float(timeout)
    for name, kinds in _FILE_TYPES.items():
        value = layered(name)
        if value is not None and _plain(value, *kinds) is None:
            return None
        values[name] = value
    if values["max_tokens"] is None:
        values["max_tokens"] = DEFAULT_MAX_TOKENS
    elif values["max_tokens"] < 0:
        return None
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        if values[name] is not None:
            values[name] = float(values[name])
    if values["stop"] is not None and not all(type(item) is str for item in values["stop"]):
        return None
    key = layered("api_key")
    if key is not None and (not isinstance(key, str) or not _printable(key)):
        return None
    values["api_key"] = key or None
    values["model"] = values["model"] or None
    return _resolved(values, flags, env, config, profile_name, profile, defaults)


# the types a plainly valid value of each config-file setting has (bool is not a number here)
_FILE_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "api_key_file": (str,),
    "api_key_command": (str,),
    "max_tokens": (int,),
    "temperature": (int, float),
    "top_p": (int, float),
    "presence_penalty": (int, float),
    "frequency_penalty": (int, float),
    "seed": (int,),
    "stop": (list,),
    "params": (dict,),
}


def _plain(value: Any, *kinds: type) -> Any:
    """The value when its type is one of kinds (never bool), else None."""
    return value if type(value) in kinds else None


def _printable(text: str) -> bool:
    return not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def load_settings(**flags: Any) -> ResolvedSettings:
    """Flags (only those the user gave) over the environment over the config file."""
    given = {k: v for k, v in flags.items() if v is not None}
    fast = _fast(given)
    if fast is not None:
        return fast
    return validated_settings(given)


def _layer(name: str, flags: dict[str, Any], env: dict[str, str], profile: dict[str, Any], defaults: dict[str, Any], profile_name: str | None = None) -> str:
    if name in flags:
        return "flag"
    if f"acs_{name}" in env and not (name in ("api_key", "model") and env[f"acs_{name}"] == ""):
        return "env"
    if name in profile:
        return f"profile {profile_name}"
    if name in defaults:
        return "file"
    return "default"


_RANK = {"flag": 0, "env": 1, "profile": 2, "file": 3, "default": 4}


def validated_settings(given: dict[str, Any]) -> ResolvedSettings:
    """The full resolution through pydantic-settings: its result stands, its errors become ConfigError."""
    from pydantic import ValidationError

    env = {k.lower(): v for k, v in os.environ.items() if k[:4].lower() == "acs_"}
    config = read_config()
    requested = given.get("profile") or env.get("acs_profile") or None
    profile_name, profile = select_profile(config, requested)
    defaults = config.defaults if config else {}
    token = _LAYERS.set((profile, defaults))
    try:
        settings = settings_model()(**given)
    except ValidationError as exc:
        raise _config_error(exc, given, env, profile, defaults, profile_name, config) from None
    finally:
        _LAYERS.reset(token)
    values = {name: getattr(settings, name) for name in FIELDS}
    key = settings.api_key
    values["api_key"] = key.get_secret_value() if key is not None else None
    return _resolved(values, given, env, config, profile_name, profile, defaults)


def _resolved(
    values: dict[str, Any],
    given: dict[str, Any],
    env: dict[str, str],
    config: ConfigFile | None,
    profile_name: str | None,
    profile: dict[str, Any],
    defaults: dict[str, Any],
) -> ResolvedSettings:
    """Validated values (from either path) to settings: their sources, the key, the warnings."""
    sources = {name: _layer(name, given, env, profile, defaults, profile_name) for name in FIELDS}
    if profile_name:
        sources["profile"] = "flag" if "profile" in given else ("env" if env.get("acs_profile") else "file")
    warnings = list(config.warnings) if config else []
    key: Secret | None = None
    # the key: whichever of api_key, api_key_file, api_key_command comes from the highest layer
    candidates = [(n, sources[n]) for n in ("api_key", "api_key_file", "api_key_command") if values.get(n)]
    if candidates:
        name, layer = min(candidates, key=lambda c: _RANK[c[1].split()[0]])
        if name == "api_key":
            value = values["api_key"]
            sources["api_key"] = layer
        else:
            value, more = read_key(layer, values[name], kind="file" if name == "api_key_file" else "command")
            if not _printable(value):
                raise ConfigError(f"the key from {name} ({layer}) contains a line break or control character", _HINT_KEY)
            sources["api_key"] = f"{layer} ({name})"
            warnings += more
        key = Secret(value)
        remember_secret(value)
    return ResolvedSettings(
        values["api_base"],
        key,
        values["model"],
        values["timeout"],
        max_tokens=values["max_tokens"],
        temperature=values["temperature"],
        top_p=values["top_p"],
        stop=tuple(values["stop"] or ()),
        seed=values["seed"],
        presence_penalty=values["presence_penalty"],
        frequency_penalty=values["frequency_penalty"],
        params=dict(values["params"] or {}),
        profile=profile_name,
        warnings=tuple(warnings),
        sources=sources,
        config_file=str(config.path) if config else None,
    )


def _config_error(
    exc: Any,
    given: dict[str, Any],
    env: dict[str, str],
    profile: dict[str, Any],
    defaults: dict[str, Any],
    profile_name: str | None,
    config: ConfigFile | None,
) -> ConfigError:
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "setting"
    env_name, flag = _SOURCES.get(name, (f"ACS_{name.upper()}", None))
    layer = _layer(name, given, env, profile, defaults, profile_name)
    if layer == "flag":
        where = flag or f"--{name.replace('_', '-')}"
    elif layer == "env":
        where = env_name
    elif config is not None and layer != "default":
        where = f"{name} in {config.where(name, profile_name if layer.startswith('profile') else None)}"
    else:
        where = name
    reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    shown = ""
    if name != "api_key":
        value = given.get(name, error.get("input"))
        if isinstance(value, str | int | float):
            shown = f" {str(value)!r}"
    return ConfigError(f"invalid {where}{shown}: {reason}", _HINTS.get(name, f"fix {where}"))


_HINTS = {
    "api_key": _HINT_KEY,
    "api_base": "set ACS_API_BASE (or --base-url) to the server's base URL, e.g. http://localhost:8000/v1",
    "timeout": "give --timeout / ACS_TIMEOUT a number of seconds greater than 0",
}
