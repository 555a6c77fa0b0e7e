"""The table of settings, and the kinds of value a setting can hold, each kind's rules written
once for both paths (the start-up shortcut and the pydantic model).

A row (`Setting`) has the setting's name, kind, hint, default, constraint, flag, environment
variables, config keys and fallback variable; the first spelling is canonical, the others are
aliases. A kind has
    type        what pydantic validates the value to (None allowed when the setting is optional)
    before      a rule both paths apply first (a ValueError is the setting's error)
    plain       the shortcut's coercion: the value when it is plainly valid as it stands, else
                NOT_PLAIN (pydantic then decides: coercions such as "1e3", and every error message)
    constraint  pydantic Field constraints every setting of this kind has (rows add their own);
                the shortcut checks them with `within`
    after       a rule both paths apply last

`build_model` turns the table into the pydantic-settings model with the same rules;
`ResolvedSettings` is what a resolution gives. This module imports nothing of acs but
secrets.py and the default max_tokens of options.py: config.py and settings.py both read the table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from acs_cli.options import DEFAULT_MAX_TOKENS
from acs_cli.secrets import Secret, key_problem

NOT_PLAIN = object()
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{0,15})?|\.[0-9]{1,15}")  # what float() and pydantic read alike
_WHOLE = re.compile(r"[0-9]{1,18}")
_SIGNED = re.compile(r"-?[0-9]{1,18}")
JSON_DEPTH = 32  # params nested deeper than this is not a request field anyone means


def _same(value: Any) -> Any:
    return value


class Kind(NamedTuple):  # NamedTuple, not a dataclass: a third of the cost at start-up
    name: str
    type: Any
    plain: Callable[[Any], Any]
    before: Callable[[Any], Any] = _same
    after: Callable[[Any], Any] = _same
    constraint: tuple[tuple[str, Any], ...] = ()
    empty_is_unset: bool = False  # "" at a layer means: not set there
    env_json: str | None = None  # its environment values are JSON: "list" (or one string), "object"


def utf8_text(text: str) -> str:
    """Text decoded from bytes that were not UTF-8 holds lone surrogates (os.environ, argv)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("it is not valid UTF-8 text") from None
    return text


def _optional_text(value: Any) -> Any:
    """Stripped; "" is unset; white space only or a control character is an error."""
    if not isinstance(value, str):
        return value
    stripped = utf8_text(value).strip()
    if not stripped:
        if value == "":
            return None
        raise ValueError("it is blank (white space only)")
    if _CONTROL.search(stripped):
        raise ValueError("it contains a line break or another control character")
    return stripped


def _key(value: Any) -> Any:
    """Stripped; "" is unset; blank, non-ASCII or a control character is an error."""
    if not isinstance(value, str):
        return value
    key = value.strip()
    if not key:
        if value == "":
            return None
        raise ValueError("it is blank (white space only)")
    problem = key_problem(key)
    if problem:
        raise ValueError(problem)
    return key


def _str_only(value: Any) -> Any:
    return value if type(value) is str else NOT_PLAIN


def _text_input(value: Any) -> Any:
    return utf8_text(value) if isinstance(value, str) else value


def check_base_url(value: str) -> str:
    """Reject a base URL that cannot work, before any request is made."""
    from urllib.parse import urlsplit

    text = utf8_text(value).strip()
    if not text:
        raise ValueError("it is empty")
    if any(ch.isspace() for ch in text):
        raise ValueError("it contains white space")
    if _CONTROL.search(text):
        raise ValueError("it contains a control character")
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError(f"it is not a URL ({exc})") from None
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
    if not text.isascii():  # an international name: the HTTP client must be able to encode it
        import httpx

        try:
            httpx.URL(text)
        except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
            raise ValueError(f"its host cannot be encoded ({exc})") from None
    return text.rstrip("/")


def _number_input(value: Any) -> Any:
    """TOML's true/false are not numbers (pydantic would read them as 1 and 0)."""
    if isinstance(value, bool):  # a ValueError: pydantic reports only those as the value's error
        raise ValueError("it must be a number, not true or false")
    return _text_input(value)


def _plain_float(value: Any) -> Any:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value) if abs(value) <= 2**53 else NOT_PLAIN
    if type(value) is str and _DECIMAL.fullmatch(value):
        return float(value)
    return NOT_PLAIN


def _plain_int(pattern: re.Pattern[str]) -> Callable[[Any], Any]:
    def plain(value: Any) -> Any:
        if type(value) is int:
            return value
        if type(value) is str and pattern.fullmatch(value):
            return int(value)
        return NOT_PLAIN

    return plain


def _strings_input(value: Any) -> Any:
    """One string is a list of one; every string is UTF-8 text."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                utf8_text(item)
    return value


def _plain_strings(value: Any) -> Any:
    return list(value) if type(value) is list and all(type(item) is str for item in value) else NOT_PLAIN


def json_values(value: Any, path: str = "params", depth: int = 0) -> Any:
    """Only what a JSON request body can carry: no NaN or infinity, no dates (TOML has them)."""
    if depth > JSON_DEPTH:
        raise ValueError(f"{path} is nested more than {JSON_DEPTH} levels")
    if isinstance(value, str):
        utf8_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path} is {value}: JSON has no NaN or infinity")
    elif isinstance(value, dict):
        for key, item in value.items():
            json_values(item, f"{path}.{utf8_text(str(key))}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            json_values(item, f"{path}[{index}]", depth + 1)
    elif value is not None and not isinstance(value, bool | int | float):
        raise ValueError(f"{path} is a {type(value).__name__}: only JSON values can be sent")
    return value


def _plain_table(value: Any) -> Any:
    return value if type(value) is dict else NOT_PLAIN


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"JSON has no {name}")


def decode_env_json(kind: Kind, text: str) -> Any:
    """An environment value of a list or table setting: JSON (a list may also be one string)."""
    import json

    if kind.env_json == "list" and not text.lstrip().startswith("["):
        return text
    try:
        value = json.loads(utf8_text(text), parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"it is not JSON ({exc})") from None
    if not isinstance(value, dict if kind.env_json == "object" else list):
        raise ValueError(f"it must be a JSON {kind.env_json}")
    return value


def within(value: Any, constraint: tuple[tuple[str, Any], ...]) -> bool:
    """The shortcut's reading of pydantic's constraints."""
    if isinstance(value, float) and not math.isfinite(value):
        return False  # every float kind has allow_inf_nan=False
    checks = {"gt": lambda v, c: v > c, "ge": lambda v, c: v >= c, "le": lambda v, c: v <= c}
    return all(checks[name](value, limit) for name, limit in constraint if name in checks)


_FINITE = (("allow_inf_nan", False),)
TEXT = Kind("text", str, _str_only, before=_optional_text, empty_is_unset=True)
SECRET = Kind("secret", str, _str_only, before=_key, empty_is_unset=True)
URL = Kind("url", str, _str_only, before=_text_input, after=check_base_url)
SECONDS = Kind("seconds", float, _plain_float, before=_number_input, constraint=_FINITE)
NUMBER = Kind("number", float, _plain_float, before=_number_input, constraint=_FINITE)
COUNT = Kind("count", int, _plain_int(_WHOLE), before=_number_input)
INTEGER = Kind("integer", int, _plain_int(_SIGNED), before=_number_input)
STRINGS = Kind("strings", list[str], _plain_strings, before=_strings_input, env_json="list")
TABLE_KIND = Kind("table", dict[str, Any], _plain_table, after=json_values, env_json="object")


DEFAULT_BASE_URL = "http://localhost:8000/v1"
DEFAULT_API_BASE = DEFAULT_BASE_URL  # the old name
DEFAULT_TIMEOUT = 600.0
MAX_TIMEOUT = 1_000_000.0  # 11.5 days: below what poll()/select() accept as a wait (24.8 days in ms)


class Setting(NamedTuple):
    """One row of the table."""

    name: str  # the canonical name: attribute, load_settings keyword, first config key
    kind: Kind
    hint: str
    default: Any = None
    constraint: tuple[tuple[str, Any], ...] = ()  # pydantic Field constraints: ("gt", 0), ...
    flag: str | None = None
    env: tuple[str, ...] = ()  # canonical first, then aliases
    keys: tuple[str, ...] = ()  # config-file keys: canonical first, then aliases
    fallback: str | None = None  # a variable consulted below the config file

    @property
    def optional(self) -> bool:
        return self.default is None


def _row(name: str, kind: Kind, hint: str, flag: str | None = "", **more: Any) -> Setting:
    """A row with the usual spellings: flag --NAME, env ACS_NAME, config key NAME."""
    more.setdefault("env", (f"ACS_{name.upper()}",))
    more.setdefault("keys", (name,))
    return Setting(name, kind, hint, flag=f"--{name.replace('_', '-')}" if flag == "" else flag, **more)


_KEY_HINT = "set ACS_API_KEY to the key alone, on one line"
TABLE: tuple[Setting, ...] = (
    _row(
        "base_url", URL, "set ACS_BASE_URL (or --base-url) to the server's base URL, e.g. http://localhost:8000/v1",
        default=DEFAULT_BASE_URL, env=("ACS_BASE_URL", "ACS_API_BASE"), keys=("base_url", "api_base"),
        fallback="OPENAI_BASE_URL",
    ),
    _row("api_key", SECRET, _KEY_HINT, flag=None, fallback="OPENAI_API_KEY"),
    _row("api_key_file", TEXT, "name the file holding the key", flag=None),
    _row("api_key_command", TEXT, "give the command that prints the key", flag=None),
    _row("model", TEXT, "give --model / ACS_MODEL the model's name"),
    _row(
        "timeout", SECONDS, f"give --timeout / ACS_TIMEOUT a number of seconds greater than 0, at most {MAX_TIMEOUT:.0f}",
        default=DEFAULT_TIMEOUT, constraint=(("gt", 0), ("le", MAX_TIMEOUT)),
    ),
    _row("profile", TEXT, "give --profile / ACS_PROFILE the name of a [profiles.NAME] table", keys=()),
    _row("max_tokens", COUNT, "give it a whole number, 0 or more", default=DEFAULT_MAX_TOKENS, constraint=(("ge", 0),)),
    _row("temperature", NUMBER, "give it a finite number"),
    _row("top_p", NUMBER, "give it a finite number"),
    _row("stop", STRINGS, 'give it a string or a list of strings (in the environment a JSON list: ["a","b"])', default=()),
    _row("seed", INTEGER, "give it a whole number"),
    _row("presence_penalty", NUMBER, "give it a finite number"),
    _row("frequency_penalty", NUMBER, "give it a finite number"),
    _row("params", TABLE_KIND, "give it a table of JSON values (in the environment a JSON object)", flag="--param", default=()),
)
FIELDS = tuple(s.name for s in TABLE)
BY_NAME = {s.name: s for s in TABLE}
# every spelling of a config key -> its setting (profile is read by config.py, at the top only)
FILE_KEYS = {key: s for s in TABLE for key in s.keys}
KEY_SOURCES = ("api_key", "api_key_file", "api_key_command")


@dataclass(frozen=True)
class ResolvedSettings:
    """What a resolution gives: one attribute per row of the table (the key as a Secret), and
    where each value came from."""

    base_url: str
    api_key: Secret | None
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
    # where each value came from: "flag --model", "env ACS_API_BASE", "profile dev", "file defaults",
    # "default"; for a key from a file or command "profile dev (api_key_command)"
    sources: dict[str, str] = field(default_factory=dict)
    config_file: str | None = None
    notes: dict[str, str] = field(default_factory=dict)  # per setting: what was set but not used, and why
    api_key_file: str | None = None
    api_key_command: str | None = None

    @property
    def api_base(self) -> str:
        """The old name of base_url."""
        return self.base_url


def build_model(table: Any) -> type[Any]:
    """The pydantic-settings model of the table: one field per row, its kind's type, rules and
    constraints. Its only source is what settings.collect gathered (the layers are the table's)."""
    from typing import Annotated, Optional

    from pydantic import AfterValidator, BeforeValidator, Field, create_model
    from pydantic_settings import (
        BaseSettings,
        PydanticBaseSettingsSource,
        SettingsConfigDict,
    )

    class Base(BaseSettings):
        # the defaults are the table's, valid by construction; an input never shows in an error
        model_config = SettingsConfigDict(extra="forbid", hide_input_in_errors=True, validate_default=False)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)  # settings.collect read the layers, by the table

    fields: dict[str, Any] = {}
    for row in table:
        kind = row.kind
        annotation = Optional[kind.type] if row.optional else kind.type
        after = kind.after
        fields[row.name] = (
            Annotated[
                annotation,
                Field(**dict(kind.constraint + row.constraint)),
                AfterValidator(lambda v, after=after: v if v is None else after(v)),
                BeforeValidator(kind.before),
            ],
            row.default,
        )
    return create_model("Settings", __base__=Base, **fields)
