"""The start-up shortcut in load_settings must agree with the pydantic model on every input.

A property test draws, for every setting of the table, values from its domain and its edges
(empty, white space, huge, negative, zero, NaN and infinity spellings, `1e3`, unicode, control
characters, undecodable bytes, bad URLs and ports, booleans for numbers, ...) and puts them in
every layer: flags, the environment (canonical names, aliases, other casings, OPENAI_
fallbacks), the config file's top level and a profile. For each draw, `load_settings` (the
shortcut when it answers) and `validated_settings` (pydantic always) give the same settings, or
the same error (message, hint, setting); nothing else is ever raised; and the winning layer is
the one the documented precedence names. The cases the old listed test checked are explicit
examples of the same property.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from acs_cli.errors import ConfigError
from acs_cli.settings import (
    FIELDS,
    TABLE,
    _shortcut,
    _validate,
    collect,
    load_settings,
    settings_model,
    validated_settings,
)
from tests.helpers import REPO_ROOT

_WORK = Path(tempfile.mkdtemp(prefix="acs-settings-"))  # module-level: strategies below draw these paths
atexit.register(shutil.rmtree, _WORK, True)
_CONFIG = _WORK / "config.toml"
KEY_FILE = _WORK / "key.txt"
KEY_FILE.write_text("sk-from-key-file-0001\n")
KEY_FILE.chmod(0o600)
BINARY_KEY_FILE = _WORK / "binary.key"
BINARY_KEY_FILE.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")

# ------------------------------------------------------------------------------------ layers


@contextmanager
def layers(env: dict[str, str], config: str | None) -> Iterator[None]:
    """The environment and the config file of one draw; everything restored afterwards."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.upper().startswith(("ACS_", "OPENAI_")) or name == "XDG_CONFIG_HOME":
            del os.environ[name]
    os.environ["ACS_CONFIG"] = str(_CONFIG)
    os.environ.update(env)
    if config is None:
        _CONFIG.unlink(missing_ok=True)
    else:
        _CONFIG.write_text(config, encoding="utf-8")
        _CONFIG.chmod(0o600)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def outcome(resolve: Any) -> tuple[Any, ...]:
    """Everything a resolution decides, or its error; any other exception fails the test."""
    try:
        s = resolve()
    except ConfigError as exc:
        return ("error", exc.message, exc.hint, getattr(exc, "setting", None))
    key = s.api_key.get_secret_value() if s.api_key is not None else None
    values = tuple(repr(getattr(s, name)) for name in FIELDS if name != "api_key")  # repr: nan == nan
    return ("ok", key, values, s.warnings, s.sources, s.notes, s.config_file, s.profile)


def check_agreement(flags: dict[str, Any], env: dict[str, str], config: str | None) -> tuple[Any, ...]:
    with layers(env, config):
        reference = outcome(lambda: validated_settings(dict(flags)))
        assert outcome(lambda: load_settings(**flags)) == reference
        try:
            collected = collect({k: v for k, v in flags.items() if v is not None})
        except ConfigError:
            return reference
        shortcut = _shortcut(collected)
        event("shortcut answered" if shortcut is not None else "pydantic decided")
        if shortcut is not None:  # whenever the shortcut answers, pydantic gives the same values
            assert repr(shortcut) == repr(_validate(collected))
        return reference


# ------------------------------------------------------------------------------------ values

EDGE_TEXT = [
    "", " ", "\t", "  x  ", "\n", "a\nb", "a\r\nX-Evil: 1", "\x00", "\x7f", "\x85", "a\udcff", "é", "☃", "x" * 300,
    "1e3", "1E3", "nan", "NaN", "-nan", "inf", "-inf", "+inf", "Infinity", "infinity", "+1", "-1", "-0", "0", "0.0",
    "00", ".5", "5.", " 7 ", "1_000", "０", "١٢", "9" * 30, "9" * 5000, "1.5", "-2.5", "true", "false", "[]", "{}",
    '["a"]', '["a", 1]', '{"a": 1}', '{"a": NaN}', '{"a": {"b": [1, 2.5, null]}}', "[", "{", "null",
]
EDGE_URLS = [
    "http://127.0.0.1:9/v1", "https://example.com/v1/", "  https://example.com/v1/  ", "HTTP://UPPER.example/v1",
    "https://api.openai.com/v1", "http://api.openai.com/v1", "example.com/v1", "localhost:8000/v1", "http://exa mple.com",
    "ftp://x/v1", "http://", "https:///v1", "http://h:99999/v1", "http://h:-1/v1", "http://h:x/v1", "http://[::1",
    "http://[::1]:8000/v1", "http://h/v1?q=1", "http://h/v1#f", "http://user:pass@h/v1", "http://tok@h/v1",
    "http://u:p@ss@h/v1", "http://bücher.example/v1", "http://\u2603.example/v1", "http://xn--/v1", "http://h\x00/v1",
    "http://h/v1\udcff", "http://h:0/v1",
]
EDGE_NATIVE: list[Any] = [
    0, 1, -1, 64, 2**53 + 1, 10**30, 0.0, -0.0, 0.5, 2.0, 1e308, float("nan"), float("inf"), float("-inf"), True, False,
    "", " ", "x", "##", [], ["a"], ["a", 1], [["a"]], {}, {"a": 1}, {"a": float("nan")}, {"a": {"b": [1, "x"]}},
]
TEXT_VALUES = st.one_of(st.sampled_from(EDGE_TEXT), st.text(max_size=12), st.from_regex(r"-?[0-9]{0,4}(\.[0-9]{0,3})?([eE][+-]?[0-9]{1,3})?", fullmatch=True))
# spellings where float()/int() and pydantic could part ways, or a constraint's edge lies
NUMERIC_EDGES = [
    "0", "-0", "0.0", "1e3", "1E3", "1e400", "-1e400", "5.", ".5", "+1", " 7 ", "\t3\n", "1_000", "０", "١٢", "0x10",
    "1000000", "1000000.0", "1000000.5", "1000001", "nan", "inf", "-inf", "Infinity", "9" * 19, "9" * 400, "-5", "true",
]
NUMBER_SPELLINGS = st.one_of(
    st.sampled_from(NUMERIC_EDGES),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(0, 1e7).map(lambda f: f"{f:.3f}"),
)


VALID = {  # plainly valid values of each kind, so that a good share of draws resolve
    "url": st.sampled_from(["http://127.0.0.1:9/v1", "https://example.com/v1/", "http://[::1]:8000/v1", "https://api.openai.com/v1"]),
    "seconds": st.one_of(st.integers(1, 10**6), st.floats(0.001, 1e6)),
    "number": st.one_of(st.integers(-5, 5), st.floats(-2, 2)),
    "count": st.integers(0, 4096),
    "integer": st.integers(-(2**31), 2**31),
    "text": st.sampled_from(["llama", "meta-llama/Llama-3.1-8B", "p", "sk-abc", "é-model"]),
    "secret": st.sampled_from(["sk-valid-key-0001", "x", "abc"]),
    "strings": st.one_of(st.sampled_from(["##", "\n\n"]), st.lists(st.sampled_from(["a", "\n", "END"]), max_size=3)),
    "table": st.dictionaries(st.sampled_from(["top_k", "min_p"]), st.one_of(st.integers(0, 50), st.floats(0, 1)), max_size=2),
}


def _kind(name: str) -> str:
    return next(s.kind.name for s in TABLE if s.name == name)


def flag_values(name: str) -> st.SearchStrategy[Any]:
    """What a flag can carry: text as typed (typer gives str), or a value typer has parsed."""
    kind = _kind(name)
    if kind == "url":
        edges = st.one_of(st.sampled_from(EDGE_URLS), TEXT_VALUES)
    elif kind in ("seconds", "number", "count", "integer"):
        edges = st.one_of(NUMBER_SPELLINGS, st.floats(allow_nan=True, allow_infinity=True), TEXT_VALUES)
    elif kind == "strings":
        edges = st.one_of(TEXT_VALUES, st.lists(TEXT_VALUES, max_size=3))
    elif kind == "table":
        edges = st.one_of(st.dictionaries(st.sampled_from(["top_k", "min_p"]), st.sampled_from(EDGE_NATIVE), max_size=2), TEXT_VALUES)
    else:
        edges = TEXT_VALUES
    return st.one_of(VALID[kind], VALID[kind].map(str) if kind not in ("strings", "table") else VALID[kind], edges)


def env_values(name: str) -> st.SearchStrategy[str]:
    """What a variable can hold: any text but NUL (undecodable bytes arrive as lone surrogates)."""
    kind = _kind(name)
    if kind == "url":
        edges = st.one_of(st.sampled_from(EDGE_URLS), TEXT_VALUES)
    elif kind in ("seconds", "number", "count", "integer"):
        edges = st.one_of(NUMBER_SPELLINGS, TEXT_VALUES)
    else:
        edges = TEXT_VALUES
    valid = VALID[kind].map(json.dumps) if kind in ("strings", "table") else VALID[kind].map(str)
    return st.one_of(valid, valid, edges).filter(lambda v: "\x00" not in v)


def native_values(name: str) -> st.SearchStrategy[Any]:
    """What a TOML file can hold: strings, numbers (NaN and infinity too), booleans, dates, lists, tables."""
    kind = _kind(name)
    base = st.one_of(VALID[kind], VALID[kind], st.sampled_from(EDGE_NATIVE), st.sampled_from(["1979-05-27T07:32:00Z"]).map(TomlLiteral))
    if kind == "url":
        return st.one_of(st.sampled_from(EDGE_URLS).filter(lambda u: "\udcff" not in u), base)
    if name == "api_key_file":
        return st.sampled_from([str(KEY_FILE), str(BINARY_KEY_FILE), str(_WORK / "missing.key"), "", " ", str(_WORK)])
    if kind in ("seconds", "number", "count", "integer"):
        return st.one_of(base, st.integers(), st.floats(allow_nan=True, allow_infinity=True))
    return st.one_of(base, st.text(max_size=8).filter(lambda t: "\udcff" not in t), st.lists(st.text(max_size=4), max_size=3))


class TomlLiteral(str):
    """Written into the file as it is (a TOML date)."""


def toml_value(value: Any) -> str:
    if isinstance(value, TomlLiteral):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value).replace("nan", "nan").replace("inf", "inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def toml_table(table: dict[str, Any]) -> str:
    return "".join(f"{key} = {toml_value(value)}\n" for key, value in table.items())


# every spelling each setting has in each layer
ENV_NAMES = {s.name: [*s.env, *([s.fallback] if s.fallback else [])] for s in TABLE}
FILE_NAMES = {s.name: list(s.keys) for s in TABLE if s.keys}
FLAG_NAMES = {s.name: [s.name, *s.keys[1:]] for s in TABLE}
SETTINGS = [s.name for s in TABLE if s.name != "api_key_command"]  # the command runs a process: tested apart


@st.composite
def draws(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str], str | None]:
    flags: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from([n for n in SETTINGS if n not in ("api_key", "api_key_file")]), max_size=3, unique=True)):
        flags[draw(st.sampled_from(FLAG_NAMES[name]))] = draw(flag_values(name))
    env: dict[str, str] = {}
    for name in draw(st.lists(st.sampled_from(SETTINGS), max_size=4, unique=True)):
        for var in draw(st.lists(st.sampled_from(ENV_NAMES[name]), min_size=1, max_size=2, unique=True)):
            spelled = var.lower() if var.startswith("ACS_") and draw(st.integers(0, 9)) == 0 else var
            env[spelled] = draw(env_values(name))
    if env.get("ACS_API_KEY_FILE") is not None:
        env["ACS_API_KEY_FILE"] = draw(st.sampled_from([str(KEY_FILE), str(BINARY_KEY_FILE), ""]))
    if not draw(st.booleans()):
        return flags, env, None
    tables: list[dict[str, Any]] = [{}, {}]
    for table in tables:
        for name in draw(st.lists(st.sampled_from([n for n in SETTINGS if n in FILE_NAMES]), max_size=4, unique=True)):
            table[draw(st.sampled_from(FILE_NAMES[name]))] = draw(native_values(name))
    select = draw(st.sampled_from(['profile = "p"\n', "", 'profile = "nope"\n']))
    return flags, env, select + toml_table(tables[0]) + "[profiles.p]\n" + toml_table(tables[1])


# ------------------------------------------------------------------------------------ precedence oracle


def expected_label(name: str, flags: dict[str, Any], env: dict[str, str], config: str | None, selected: str | None) -> str:
    """The documented precedence, written out independently of settings.py, for a plain setting
    (`selected`: the profile the run selected, whichever layer named it)."""
    setting = next(s for s in TABLE if s.name == name)
    skip_empty = setting.kind.empty_is_unset
    for spelling in FLAG_NAMES[name]:
        if flags.get(spelling) is not None and not (skip_empty and flags[spelling] == ""):
            return f"flag {setting.flag}"
    upper = {k.upper(): v for k, v in sorted(env.items(), key=lambda kv: kv[0] == kv[0].upper())}
    for var in setting.env:
        if var in upper and not (skip_empty and upper[var] == ""):
            return f"env {var}"
    if config is not None:
        import tomllib

        data = tomllib.loads(config)
        profile = data.get("profiles", {}).get(selected, {}) if selected else {}
        for table, label in ((profile, f"profile {selected}"), (data, "file defaults")):
            for key in setting.keys:
                if key in table and not (skip_empty and table[key] == ""):
                    return label
    if setting.fallback == "OPENAI_BASE_URL" and env.get("OPENAI_BASE_URL"):
        return "env OPENAI_BASE_URL"
    return "default"


PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# the cases the listed differential test checked, kept as explicit examples of the property
OLD_ENVIRONMENTS = [
    {}, {"ACS_API_BASE": "http://127.0.0.1:9/v1"}, {"ACS_API_BASE": "  https://example.com/v1/  "},
    {"acs_api_base": "http://lower.case:8000/v1"}, {"ACS_API_BASE": "example.com/v1"}, {"ACS_API_BASE": "http://exa mple.com"},
    {"ACS_API_BASE": "ftp://x/v1"}, {"ACS_API_BASE": "http://"}, {"ACS_API_BASE": ""}, {"ACS_API_BASE": "http://h:99999/v1"},
    {"ACS_API_KEY": "sk-secret"}, {"ACS_API_KEY": ""}, {"ACS_MODEL": "llama"}, {"ACS_MODEL": ""}, {"ACS_TIMEOUT": "30"},
    {"ACS_TIMEOUT": "0.5"}, {"ACS_TIMEOUT": ".5"}, {"ACS_TIMEOUT": "1e3"}, {"ACS_TIMEOUT": " 7 "}, {"ACS_TIMEOUT": "0"},
    {"ACS_TIMEOUT": "-1"}, {"ACS_TIMEOUT": "abc"}, {"ACS_TIMEOUT": "inf"}, {"ACS_TIMEOUT": "nan"}, {"ACS_TIMEOUT": ""},
]
OLD_FLAGS = [{}, {"api_base": "http://flag:1/v1"}, {"api_base": "nope"}, {"model": "m"}, {"timeout": 2.5}, {"timeout": 0.0}]
OLD_CONFIG_FILES = [
    "",
    'model = "file-model"\nmax_tokens = 64\ntimeout = 30\n',
    'profile = "p"\n[profiles.p]\napi_base = "http://profile:1/v1"\ntemperature = 0.5\nstop = "##"\nseed = 3\n',
    'profile = "p"\nmax_tokens = 9\n[profiles.p]\nmax_tokens = 10\nparams = { top_k = 40 }\ntop_p = 1\n',
    'api_key = "sk-file-key-0001"\n',
    'api_key_command = "echo sk-command-key-01"\n[profiles.q]\nmodel = "q"\n',
    "timeout = 0\n", "timeout = true\n", "max_tokens = 2.0\n", "max_tokens = -1\n", 'temperature = "hot"\n',
    "stop = [1, 2]\n", 'api_base = "nope"\n', 'model = ""\n', "seed = 1.5\n",
]
OLD_CASES = [(f, e, None) for f in OLD_FLAGS for e in OLD_ENVIRONMENTS] + [
    (f, e, c) for f in OLD_FLAGS[:4] for e in OLD_ENVIRONMENTS[:4] + OLD_ENVIRONMENTS[10:14] for c in OLD_CONFIG_FILES
]


def _with_old_examples(test: Any) -> Any:
    for case in OLD_CASES:
        test = example(case)(test)
    return test


@PROPERTY
@_with_old_examples
@given(draws())
def test_shortcut_and_pydantic_agree_and_precedence_holds(case: tuple[dict[str, Any], dict[str, str], str | None]) -> None:
    flags, env, config = case
    result = check_agreement(flags, env, config)
    event(f"{result[0]}")
    if result[0] != "ok":
        return
    sources = result[4]
    for name in ("base_url", "model", "timeout", "max_tokens", "temperature", "seed", "stop"):
        assert sources[name] == expected_label(name, flags, env, config, result[7]), (name, sources)


LAYER_NAMES = ("flag", "env", "file", "profile")


@st.composite
def single_values(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str], str | None]:
    """One setting, one layer, one value: every edge gets drawn often."""
    name = draw(st.sampled_from([n for n in SETTINGS if n not in ("api_key_file",)]))
    layer = draw(st.sampled_from(LAYER_NAMES if name in FILE_NAMES else ("flag", "env")))
    if layer == "flag" and name != "api_key":
        return {draw(st.sampled_from(FLAG_NAMES[name])): draw(flag_values(name))}, {}, None
    if layer in ("flag", "env"):
        return {}, {draw(st.sampled_from(ENV_NAMES[name])): draw(env_values(name))}, None
    line = toml_table({draw(st.sampled_from(FILE_NAMES[name])): draw(native_values(name))})
    return {}, {}, line if layer == "file" else 'profile = "p"\n[profiles.p]\n' + line


NUMERIC = [s.name for s in TABLE if s.kind.name in ("seconds", "number", "count", "integer")]


def _with_numeric_edges(test: Any) -> Any:
    for name in NUMERIC:
        for spelling in NUMERIC_EDGES:
            test = example(({}, {f"ACS_{name.upper()}": spelling}, None))(test)
    return test


@settings(PROPERTY, max_examples=500)
@_with_numeric_edges
@given(single_values())
def test_one_value_in_one_layer(case: tuple[dict[str, Any], dict[str, str], str | None]) -> None:
    check_agreement(*case)


def test_fields_match_the_pydantic_model() -> None:
    assert tuple(settings_model().model_fields) == FIELDS


def test_every_row_builds_its_own_flag_env_and_key() -> None:
    """Rows spell their flag, variables and keys from the name unless the table says otherwise."""
    for setting in TABLE:
        assert setting.env[0] == f"ACS_{setting.name.upper()}"
        assert setting.keys[:1] in ((setting.name,), ())
        assert setting.hint


def test_secret_never_shows_its_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ACS_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("ACS_API_KEY", "sk-very-secret")
    s = load_settings()
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(s)
    assert s.api_key is not None and s.api_key.get_secret_value() == "sk-very-secret"


PLAIN_FILES = OLD_CONFIG_FILES[:6]


@pytest.mark.parametrize("text", PLAIN_FILES)
def test_shortcut_answers_for_a_plain_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    """A valid file does not cost the pydantic import: the shortcut resolves it itself."""
    for name in list(os.environ):
        if name.lower().startswith(("acs_", "openai_")):
            monkeypatch.delenv(name)
    path = tmp_path / "config.toml"
    path.write_text(text)
    monkeypatch.setenv("ACS_CONFIG", str(path))
    assert _shortcut(collect({})) is not None


PLAIN_RUN = """
import sys
from acs_cli.settings import load_settings
s = load_settings(base_url="http://127.0.0.1:9/v1", timeout="30", model="m", profile=None)
assert s.max_tokens == 64 and s.params == {"top_k": 40}, s
print("pydantic" in sys.modules)
"""


def test_a_plain_run_does_not_import_pydantic(tmp_path: Path) -> None:
    """Start-up: flags, the ACS_ variables and a plain config file resolve without pydantic."""
    path = tmp_path / "config.toml"
    path.write_text('profile = "p"\nmax_tokens = 64\n[profiles.p]\napi_base = "http://h:1/v1"\nstop = ["##"]\nparams = { top_k = 40 }\n')
    env = {"PATH": os.environ.get("PATH", ""), "ACS_CONFIG": str(path), "ACS_MODEL": "x", "ACS_TIMEOUT": "12.5", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", PLAIN_RUN], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
