"""Settings from one table: every setting's name, type, constraint, flag, environment variables,
config keys and hint are written once, in TABLE, and everything else derives from it: the layers
each value is looked up in, the pydantic-settings model, the start-up shortcut that avoids
importing pydantic, the error messages, and the rows of `acs config show`.

Precedence, highest first (LAYERS):

    flag            --base-url (load_settings(base_url=...) or its alias api_base=...)
    env             ACS_BASE_URL, then its alias ACS_API_BASE (the canonical name wins)
    profile         the selected [profiles.NAME] table: base_url, then its alias api_base
    file            the config file's top level (defaults for every profile), same spellings
    fallback        OPENAI_BASE_URL, OPENAI_API_KEY (see below)
    default         the built-in default

An empty value of an optional text setting (model, the key, api_key_file, ...) counts as not set
at that layer; a value of white space only, or with a control character, is an error. `params`
tables merge key by key across layers (a higher layer's key wins); every other setting is taken
whole from the highest layer that sets it. The key is whichever of api_key, api_key_file and
api_key_command the highest layer sets (in that order within one layer).

The OpenAI pairing rule. OPENAI_API_KEY is used only when no ACS_ variable, profile or file sets
a key AND the base URL in effect came from OPENAI_BASE_URL or is https://api.openai.com: a key
exported for OpenAI is never sent to a server the user did not pair it with (a local server at
the default URL, or one named in ACS_BASE_URL). `acs config show` says when it is set but unused.

A base URL with credentials (`user:pass@`) together with a key is refused (exit 3): the HTTP
client would replace the key's `Authorization: Bearer` with the URL's Basic credentials.

`load_settings` first tries the shortcut: the same collected values, each checked by its kind's
plain rules (a number that is a number, a URL that passes `check_base_url`, ...). Anything not
plainly valid goes to the pydantic model, whose answer (or error) stands. The kinds' rules
(`before`, `after`, the constraint) are the same functions on both paths; tests/test_settings.py
draws values from every field's domain and edges and checks both paths agree.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from acs_cli.config import ConfigFile, config_path, config_rows, read_config, read_key, select_profile
from acs_cli.errors import ConfigError
from acs_cli.secrets import Secret, mask_url, remember_secret, remember_url, url_credentials
from acs_cli.settings_table import (
    BY_NAME,
    DEFAULT_API_BASE,
    DEFAULT_BASE_URL,
    FIELDS,
    KEY_SOURCES,
    NOT_PLAIN,
    SECRET,
    TABLE,
    TABLE_KIND,
    ResolvedSettings,
    Setting,
    build_model,
    check_base_url,
    decode_env_json,
    within,
)

# what other modules use (some of it defined in settings_table, config and secrets)
__all__ = ["DEFAULT_API_BASE", "DEFAULT_BASE_URL", "FIELDS", "TABLE", "ResolvedSettings", "Secret", "SettingError"]
__all__ += ["check_base_url", "config_rows", "load_settings", "validated_settings"]
LAYERS = ("flag", "env", "profile", "file", "fallback", "default")


class SettingError(ConfigError):
    """A ConfigError about one setting; `setting` is its canonical name."""

    def __init__(self, setting: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.setting = setting


class Origin(NamedTuple):
    layer: str  # one of LAYERS
    name: str  # what the user wrote: "--base-url", "ACS_API_BASE", the config key "api_base", ...
    label: str  # for `acs config show` and ResolvedSettings.sources: "env ACS_API_BASE", "profile dev"


DEFAULT = Origin("default", "", "default")


class Collected:
    """Every setting's winning raw value and its origin, and what the run read to find them."""

    def __init__(self, config: ConfigFile | None, profile_name: str | None) -> None:
        self.raw: dict[str, tuple[Any, Origin]] = {}
        self.config = config
        self.profile_name = profile_name
        self.notes: dict[str, str] = {}

    def where(self, origin: Origin) -> str:
        """The place a value came from, as an error message names it."""
        if origin.layer in ("profile", "file") and self.config is not None:
            profile = self.profile_name if origin.layer == "profile" else None
            return f"{origin.name} in {self.config.where(origin.name, profile)}"
        return origin.name


# ---------------------------------------------------------------------------------------- entry points


def load_settings(**flags: Any) -> ResolvedSettings:
    """Flags (those the user gave; None = not given) over the environment over the config file."""
    collected = collect({k: v for k, v in flags.items() if v is not None})
    values = _shortcut(collected)
    if values is None:
        values = _validate(collected)
    return _resolved(values, collected)


def validated_settings(given: dict[str, Any]) -> ResolvedSettings:
    """The same resolution, validated by the pydantic model only (`acs config show`, the tests)."""
    collected = collect({k: v for k, v in given.items() if v is not None})
    return _resolved(_validate(collected), collected)


# ---------------------------------------------------------------------------------------- collection


def collect(flags: dict[str, Any]) -> Collected:
    """Each setting's value from the highest layer that sets it (see the module's docstring)."""
    env = _environment()
    flags = _flags_by_name(flags)
    path = config_path()
    config = read_config(path) if path.exists() else None
    profile_name, profile, origin = _profile(config, flags, env)
    collected = Collected(config, profile_name)
    if profile_name:
        collected.raw["profile"] = (profile_name, origin)
    defaults = config.defaults if config else {}
    for setting in TABLE:
        if setting.name == "profile":
            continue
        candidates = [*_flag_and_env(setting, flags, env), *_file_layers(setting, profile, defaults, profile_name)]
        if setting.fallback and env.get(setting.fallback) and _paired(setting, collected):
            candidates.append((env[setting.fallback], Origin("fallback", setting.fallback, f"env {setting.fallback}")))
        winner = _merged(setting, candidates, collected) if setting.kind is TABLE_KIND else _first(setting, candidates)
        if winner is not None:
            collected.raw[setting.name] = _decoded(setting, winner, collected)
    _one_key_source(collected)
    if env.get("OPENAI_API_KEY") and not any(name in collected.raw for name in KEY_SOURCES):
        collected.notes["api_key"] = (
            "OPENAI_API_KEY is set but not used: the base URL did not come from OPENAI_BASE_URL and is not https://api.openai.com"
        )
    _remember(collected)
    return collected


def _profile(config: ConfigFile | None, flags: dict[str, Any], env: dict[str, str]) -> tuple[str | None, dict[str, Any], Origin]:
    """The selected profile: --profile, ACS_PROFILE, or the file's own `profile = "NAME"`."""
    setting = BY_NAME["profile"]
    asked = _first(setting, _flag_and_env(setting, flags, env))
    requested = _before(setting, asked[0], asked[1], None) if asked else None
    name, table = select_profile(config, requested)
    origin = asked[1] if asked and requested else Origin("file", "profile", "file defaults")
    return name, table, origin


def _environment() -> dict[str, str]:
    """ACS_ variables by their upper-case name, whatever their spelling (as pydantic-settings
    matched them; the upper-case spelling wins), and the OPENAI_ fallbacks as spelled."""
    env: dict[str, str] = {}
    for name in os.environ:  # names only: decoding every value would cost more than the rest
        upper = name.upper()
        if (upper.startswith("ACS_") and (upper not in env or name == upper)) or name in _FALLBACKS:
            env[upper] = os.environ[name]
    return env


_FALLBACKS = frozenset(s.fallback for s in TABLE if s.fallback)


def _flags_by_name(flags: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments by canonical name: an alias (api_base=) counts when the name is absent."""
    out: dict[str, Any] = {}
    for setting in TABLE:
        for spelling in (setting.name, *setting.keys):
            if spelling in flags and setting.name not in out:
                out[setting.name] = flags[spelling]
    unknown = set(flags) - {spelling for s in TABLE for spelling in (s.name, *s.keys)}
    if unknown:
        raise TypeError(f"load_settings() got unknown settings: {', '.join(sorted(unknown))}")
    return out


def _flag_and_env(setting: Setting, flags: dict[str, Any], env: dict[str, str]) -> list[tuple[Any, Origin]]:
    out = []
    if setting.name in flags:
        flag = setting.flag or f"--{setting.name.replace('_', '-')}"
        out.append((flags[setting.name], Origin("flag", flag, f"flag {flag}")))
    out += [(env[name], Origin("env", name, f"env {name}")) for name in setting.env if name in env]
    return out


def _file_layers(setting: Setting, profile: dict[str, Any], defaults: dict[str, Any], profile_name: str | None) -> list[tuple[Any, Origin]]:
    out = [(profile[key], Origin("profile", key, f"profile {profile_name}")) for key in setting.keys if key in profile]
    return out + [(defaults[key], Origin("file", key, "file defaults")) for key in setting.keys if key in defaults]


def _first(setting: Setting, candidates: list[tuple[Any, Origin]]) -> tuple[Any, Origin] | None:
    """The highest candidate; an empty one of an optional text setting counts as not set."""
    for value, origin in candidates:
        if not (setting.kind.empty_is_unset and value == ""):
            return value, origin
    return None


def _merged(setting: Setting, candidates: list[tuple[Any, Origin]], collected: Collected) -> tuple[Any, Origin] | None:
    """A table setting: the layers' tables merged key by key, the highest layer's key winning.
    A layer whose value is not a table stops the merge there (and is reported as invalid)."""
    merged: dict[str, Any] = {}
    labels: list[str] = []
    for value, origin in reversed([_decoded(setting, c, collected) for c in candidates]):
        if not isinstance(value, dict):
            return value, origin
        merged.update(value)
        labels.insert(0, origin.label)
    if not labels:
        return None
    top = candidates[0][1]
    return merged, Origin(top.layer, top.name, ", ".join(dict.fromkeys(labels)))


def _decoded(setting: Setting, candidate: tuple[Any, Origin], collected: Collected) -> tuple[Any, Origin]:
    """An environment value of a list or table setting is JSON."""
    value, origin = candidate
    if setting.kind.env_json and origin.layer == "env" and isinstance(value, str):
        try:
            value = decode_env_json(setting.kind, value)
        except ValueError as exc:
            raise _invalid(setting, origin, value, str(exc), collected) from None
    return value, origin


def _paired(setting: Setting, collected: Collected) -> bool:
    """OPENAI_BASE_URL is always a fallback; OPENAI_API_KEY only for the base URL it belongs to:
    one that came from OPENAI_BASE_URL, or https://api.openai.com itself."""
    if setting.name != "api_key":
        return True
    value, origin = collected.raw.get("base_url", (DEFAULT_BASE_URL, DEFAULT))
    if origin.layer == "fallback":  # OPENAI_BASE_URL
        return True
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(str(value).strip())
        return parts.scheme.lower() == "https" and parts.hostname == "api.openai.com"
    except ValueError:
        return False


def _one_key_source(collected: Collected) -> None:
    """Keep only the key source from the highest layer (api_key first within one layer)."""
    present = [name for name in KEY_SOURCES if name in collected.raw]
    if len(present) > 1:
        best = min(present, key=lambda name: LAYERS.index(collected.raw[name][1].layer))
        for name in present:
            if name != best:
                del collected.raw[name]


def _remember(collected: Collected) -> None:
    """The key and the URL's credentials are secrets from the moment they are read."""
    key = collected.raw.get("api_key")
    if key is not None and isinstance(key[0], str):
        remember_secret(key[0])
    base = collected.raw.get("base_url")
    if base is not None and isinstance(base[0], str):
        remember_url(base[0])


# ---------------------------------------------------------------------------------------- validation


def _before(setting: Setting, value: Any, origin: Origin, collected: Collected | None) -> Any:
    """The kind's first rule, its ValueError as the setting's error."""
    try:
        return setting.kind.before(value)
    except ValueError as exc:
        raise _invalid(setting, origin, value, str(exc), collected) from None


def _shortcut(collected: Collected) -> dict[str, Any] | None:
    """Every value by the kinds' plain rules, or None when any needs pydantic's judgement."""
    values: dict[str, Any] = {}
    for setting in TABLE:
        if setting.name not in collected.raw:
            values[setting.name] = setting.default
            continue
        try:
            value = setting.kind.before(collected.raw[setting.name][0])
            if value is not None:
                value = setting.kind.plain(value)
                if value is NOT_PLAIN or not within(value, setting.constraint + setting.kind.constraint):
                    return None
                value = setting.kind.after(value)
        except ValueError:
            return None
        values[setting.name] = value
    return values


def _validate(collected: Collected) -> dict[str, Any]:
    """The pydantic model's verdict: its values, or its first error as a SettingError."""
    from pydantic import ValidationError

    given = {name: value for name, (value, _) in collected.raw.items()}
    try:
        model = settings_model()(**given)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "base_url"
        setting = BY_NAME[name]
        value, origin = collected.raw.get(name, (None, DEFAULT))
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        raise _invalid(setting, origin, value, reason, collected) from None
    return {name: getattr(model, name) for name in FIELDS}


def _invalid(setting: Setting, origin: Origin, value: Any, reason: str, collected: Collected | None) -> SettingError:
    """`invalid WHERE 'VALUE': REASON`; the key's value is never shown, a URL's password masked."""
    where = (collected.where(origin) if collected is not None else origin.name) or setting.name
    shown = ""
    if setting.kind is not SECRET and isinstance(value, str | int | float):
        text = mask_url(value) if isinstance(value, str) else str(value)
        shown = " " + repr(text if len(text) <= 80 else text[:79] + "…")
    return SettingError(setting.name, f"invalid {where}{shown}: {reason}", setting.hint)


_MODEL: type[Any] | None = None


def settings_model() -> type[Any]:
    """The pydantic-settings model, built from TABLE on first use (importing pydantic is slow)."""
    global _MODEL
    if _MODEL is None:
        _MODEL = build_model(TABLE)
    return _MODEL


# ---------------------------------------------------------------------------------------- result


def _resolved(values: dict[str, Any], collected: Collected) -> ResolvedSettings:
    """Validated values (from either path) to settings: their sources, the key, the warnings."""
    config = collected.config
    sources = {name: collected.raw.get(name, (None, DEFAULT))[1].label for name in FIELDS}
    warnings = list(config.warnings) if config else []
    key: Secret | None = None
    source = next((name for name in KEY_SOURCES if values.get(name)), None)
    if source == "api_key":
        key = Secret(values["api_key"])
    elif source is not None:
        label = sources[source]
        text, more = read_key(label, values[source], kind="file" if source == "api_key_file" else "command")
        key = Secret(text)
        sources["api_key"] = f"{label} ({source})"
        warnings += more
    if key is not None:
        remember_secret(key.get_secret_value())
        _refuse_two_credentials(values["base_url"], sources)
    plain = {name: values[name] for name in FIELDS if name not in ("api_key", "stop", "params", *KEY_SOURCES)}
    return ResolvedSettings(
        api_key=key,
        stop=tuple(values["stop"] or ()),
        params=dict(values["params"] or {}),
        warnings=tuple(warnings),
        sources=sources,
        config_file=str(config.path) if config else None,
        notes=dict(collected.notes),
        api_key_file=values["api_key_file"] if source == "api_key_file" else None,
        api_key_command=values["api_key_command"] if source == "api_key_command" else None,
        **plain,
    )


def _refuse_two_credentials(base_url: str, sources: dict[str, str]) -> None:
    if url_credentials(base_url) is None:
        return
    raise SettingError(
        "base_url",
        f"the base URL ({sources['base_url']}) holds credentials ({mask_url(base_url)}) and a key is set ({sources['api_key']}):"
        " the URL's user:password would replace the key in the Authorization header",
        "keep one: remove the user:password@ part from the base URL, or unset the key",
    )
