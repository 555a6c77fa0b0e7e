"""Local bad input in settings is a configuration error (exit 3, one message, a hint), never an
internal error, and never shows the key. Each class is tested from its rule, several cases each:

- undecodable bytes: environment values (lone surrogates), flags, config file bytes
- a key with non-ASCII or control characters, from every place a key comes from
- NaN and infinity in numbers and in params (JSON has no such values), booleans for numbers
- a key file that is binary, huge, empty, a directory, or endless; a key command's output bounded
  in size and time
- empty and white-space values; values past a bound
- credentials in the base URL together with a key
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import acs_cli.config as config_module
from acs_cli.settings import load_settings, validated_settings
from tests.settingsutil import SettingsEnv, config_error, settings_env_fixture  # noqa: F401 - the fixture settings_env

KEY = "sk-bad-input-key-0123456789"
BOTH = pytest.mark.parametrize("resolve", [load_settings, lambda **f: validated_settings(f)], ids=["load", "pydantic"])


def _no_key_shown(error) -> None:
    text = error.message + (error.hint or "")
    assert KEY not in text and KEY[-6:] not in text


# ------------------------------------------------------------------------------------ undecodable bytes


@BOTH
@pytest.mark.parametrize(
    "name,value",
    [
        ("ACS_MODEL", "llama\udcff"),
        ("ACS_BASE_URL", "http://h\udce9/v1"),
        ("ACS_API_BASE", "http://h/v1\udc80"),
        ("OPENAI_BASE_URL", "\udcffhttp://h/v1"),
        ("ACS_TIMEOUT", "3\udcff"),
        ("ACS_PROFILE", "p\udcff"),
        ("ACS_STOP", "#\udcff#"),
        ("ACS_STOP", '["a", "\udcff"]'),
        ("ACS_PARAMS", '{"k": "\udcff"}'),
        ("ACS_API_KEY_FILE", "/tmp/\udcff"),
    ],
)
def test_undecodable_environment_values(settings_env: SettingsEnv, resolve, name: str, value: str) -> None:
    settings_env.env(**{name: value})
    error = config_error(resolve)
    assert name in error.message


@BOTH
@pytest.mark.parametrize("value", [KEY + "\udcff", "\udce9" + KEY])
def test_undecodable_key_is_refused_and_not_shown(settings_env: SettingsEnv, resolve, value: str) -> None:
    settings_env.env(ACS_API_KEY=value)
    error = config_error(resolve)
    assert "ACS_API_KEY" in error.message and "UTF-8" in error.message
    _no_key_shown(error)


@BOTH
@pytest.mark.parametrize("flag,value", [("model", "m\udcff"), ("base_url", "http://h/\udcff"), ("timeout", "\udcff"), ("profile", "\udcff")])
def test_undecodable_flags(settings_env: SettingsEnv, resolve, flag: str, value: str) -> None:
    settings_env.write('[profiles.p]\nmodel = "m"\n')
    error = config_error(lambda: resolve(**{flag: value}))
    assert f"--{flag.replace('_', '-')}" in error.message


@pytest.mark.parametrize(
    "raw,line",
    [
        (b'model = "caf\xe9"\n', 1),  # Latin-1
        (b'# comment\nmax_tokens = 5\n# \xff\xfe\n', 3),
        (b'[profiles.p]\nmodel = "m"\napi_base = "http://h/\x80"\n', 3),
        (b"\xff\xfem\x00o\x00d\x00e\x00l\x00", 1),  # UTF-16
        (b'model = "\xed\xa0\x80"\n', 1),  # an encoded surrogate is not UTF-8 either
    ],
)
def test_config_file_that_is_not_utf8(settings_env: SettingsEnv, raw: bytes, line: int) -> None:
    path = settings_env.write(raw)
    error = config_error(load_settings)
    assert f"{path} line {line}" in error.message and "not UTF-8" in error.message


# ------------------------------------------------------------------------------------ the key's characters

BAD_KEYS = [KEY + "é", "sk-\u200bzero-width-0001", KEY + "\x1b[31m", KEY + "\tx", KEY + "\x7f", "sk\r\nX-Evil: 1" + KEY, "🔑" + KEY, "sk-\x85" + KEY]


@BOTH
@pytest.mark.parametrize("key", BAD_KEYS)
def test_key_with_non_ascii_or_control_characters_from_the_environment(settings_env: SettingsEnv, resolve, key: str) -> None:
    settings_env.env(ACS_API_KEY=key)
    error = config_error(resolve)
    assert "ACS_API_KEY" in error.message
    _no_key_shown(error)


@pytest.mark.parametrize("key", BAD_KEYS[:4])
def test_key_with_bad_characters_from_every_other_source(settings_env: SettingsEnv, tmp_path: Path, key: str) -> None:
    settings_env.write(f"api_key = {_toml(key)}\n")
    _no_key_shown(config_error(load_settings))
    key_file = tmp_path / "key"
    key_file.write_text(key + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    settings_env.write(f'api_key_file = "{key_file}"\n')
    error = config_error(load_settings)
    assert "api_key_file" in error.message
    _no_key_shown(error)
    settings_env.write(f'api_key_command = "cat {key_file}"\n')
    error = config_error(load_settings)
    assert "api_key_command" in error.message
    _no_key_shown(error)
    settings_env.write("")
    settings_env.env(OPENAI_BASE_URL="http://h:1/v1", OPENAI_API_KEY=key)
    error = config_error(load_settings)
    assert "OPENAI_API_KEY" in error.message
    _no_key_shown(error)


def _toml(text: str) -> str:
    import json

    return json.dumps(text).replace("\x7f", "\\u007f")


@pytest.mark.parametrize("key", ["  " + KEY + "  ", KEY + "\n", "\t" + KEY + "\r\n"])
def test_surrounding_white_space_around_a_key_is_not_part_of_it(settings_env: SettingsEnv, key: str) -> None:
    settings_env.env(ACS_API_KEY=key)
    assert load_settings().api_key.get_secret_value() == KEY


# ------------------------------------------------------------------------------------ NaN, infinity, booleans


@BOTH
@pytest.mark.parametrize("name", ["ACS_TIMEOUT", "ACS_TEMPERATURE", "ACS_TOP_P", "ACS_PRESENCE_PENALTY", "ACS_FREQUENCY_PENALTY"])
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_in_the_environment(settings_env: SettingsEnv, resolve, name: str, value: str) -> None:
    settings_env.env(**{name: value})
    error = config_error(resolve)
    assert name in error.message


@BOTH
@pytest.mark.parametrize("key", ["timeout", "temperature", "top_p", "presence_penalty", "frequency_penalty"])
@pytest.mark.parametrize("value", ["nan", "+nan", "inf", "-inf"])
@pytest.mark.parametrize("in_profile", [False, True])
def test_non_finite_numbers_in_the_config_file(settings_env: SettingsEnv, resolve, key: str, value: str, in_profile: bool) -> None:
    path = settings_env.write(('profile = "p"\n[profiles.p]\n' if in_profile else "") + f"{key} = {value}\n")
    error = config_error(resolve)
    assert f"{key} in {path}" in error.message and "finite" in error.message


@BOTH
@pytest.mark.parametrize(
    "params",
    ["{ x = nan }", "{ x = inf }", "{ x = [1, -inf] }", "{ x = { y = nan } }", "{ when = 1979-05-27 }", "{ t = 07:32:00 }"],
)
def test_params_only_json_values_in_the_file(settings_env: SettingsEnv, resolve, params: str) -> None:
    settings_env.write(f"params = {params}\n")
    error = config_error(resolve)
    assert "params" in error.message


@BOTH
@pytest.mark.parametrize("value", ['{"x": NaN}', '{"x": Infinity}', '{"x": [-Infinity]}', "[1]", '"text"', "{", '{"x": ' * 5000])
def test_params_only_json_objects_in_the_environment(settings_env: SettingsEnv, resolve, value: str) -> None:
    settings_env.env(ACS_PARAMS=value)
    error = config_error(resolve)
    assert "ACS_PARAMS" in error.message


@BOTH
@pytest.mark.parametrize("flag", ["temperature", "top_p", "timeout", "presence_penalty"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_as_flags(settings_env: SettingsEnv, resolve, flag: str, value: float) -> None:
    error = config_error(lambda: resolve(**{flag: value}))
    assert f"--{flag.replace('_', '-')}" in error.message


@BOTH
@pytest.mark.parametrize("key", ["timeout", "max_tokens", "temperature", "seed", "top_p"])
@pytest.mark.parametrize("value", ["true", "false"])
def test_booleans_are_not_numbers(settings_env: SettingsEnv, resolve, key: str, value: str) -> None:
    settings_env.write(f"{key} = {value}\n")
    error = config_error(resolve)
    assert key in error.message and "true or false" in error.message


# ------------------------------------------------------------------------------------ key files


def _key_error(settings_env: SettingsEnv, setting: str, value: str) -> str:
    """The message of the error a key file or command gives; it names the setting, not the key."""
    settings_env.write(f"{setting} = {_toml(value)}\n")
    error = config_error(load_settings)
    assert setting in error.message
    _no_key_shown(error)
    return error.message


def _key_file_error(settings_env: SettingsEnv, path: Path | str) -> str:
    return _key_error(settings_env, "api_key_file", str(path))


@pytest.mark.parametrize(
    "content,says",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
        (b"\xff\xfes\x00k\x00", "not UTF-8"),  # UTF-16
        (KEY.encode() + b"\n\x00\x01binary tail", "control character"),
        (b"", "empty"),
        (b" \n\t\n", "empty"),
        (KEY.encode() + b"\nsecond line\n", "control character"),
        (b"k" * (64 * 1024 + 1), "larger than 64 KiB"),
    ],
)
def test_unusable_key_files(settings_env: SettingsEnv, tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    path.chmod(0o600)
    assert says in _key_file_error(settings_env, path)


def test_key_file_that_never_ends_is_read_to_the_bound(settings_env: SettingsEnv) -> None:
    started = time.monotonic()
    assert "larger than 64 KiB" in _key_file_error(settings_env, "/dev/zero")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("where", ["directory", "missing"])
def test_key_file_that_is_not_a_file(settings_env: SettingsEnv, tmp_path: Path, where: str) -> None:
    path = tmp_path if where == "directory" else tmp_path / "nope"
    assert "cannot read" in _key_file_error(settings_env, path)


def test_a_key_file_of_exactly_the_bound_is_read(settings_env: SettingsEnv, tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"k" * (64 * 1024))
    path.chmod(0o600)
    settings_env.write(f'api_key_file = "{path}"\n')
    assert len(load_settings().api_key.get_secret_value()) == 64 * 1024


# ------------------------------------------------------------------------------------ key commands


def _command_error(settings_env: SettingsEnv, command: str) -> str:
    return _key_error(settings_env, "api_key_command", command)


@pytest.mark.parametrize(
    "command,says",
    [
        ("yes " + KEY, "more than 64 KiB"),  # endless output
        ("head -c 70000 /dev/zero", "more than 64 KiB"),
        ("printf '\\377\\376k'", "not UTF-8"),
        ("true", "empty"),
        (f"printf '{KEY}\\nmore'", "control character"),
        (f"sh -c 'echo {KEY}; exit 4'", "exit status 4"),
        ("/nonexistent/command", "could not run"),
        ("   ", "blank"),
        ("'unbalanced", "could not run"),
    ],
)
def test_unusable_key_commands(settings_env: SettingsEnv, command: str, says: str) -> None:
    assert says in _command_error(settings_env, command)


def test_key_command_out_of_time(settings_env: SettingsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "KEY_COMMAND_SECONDS", 0.5)
    started = time.monotonic()
    assert "timed out after 0.5 s" in _command_error(settings_env, "sh -c 'sleep 30; echo key'")
    assert time.monotonic() - started < 10


def test_key_command_that_leaves_a_child_holding_its_output(settings_env: SettingsEnv) -> None:
    """The command printed the key and ended; what it left in the background does not hold acs."""
    command = 'sh -c "sleep 30 & echo ' + KEY + '"'
    settings_env.write(f"api_key_command = {_toml(command)}\n")
    started = time.monotonic()
    assert load_settings().api_key.get_secret_value() == KEY
    assert time.monotonic() - started < 10


# ------------------------------------------------------------------------------------ empty, blank, bounds


@BOTH
@pytest.mark.parametrize(
    "name,value,says",
    [
        ("ACS_BASE_URL", "", "empty"),
        ("ACS_API_BASE", "   ", "empty"),
        ("ACS_TIMEOUT", "", "number"),
        ("ACS_TIMEOUT", " ", "number"),
        ("ACS_MODEL", "  ", "blank"),
        ("ACS_MODEL", "\t\n", "blank"),
        ("ACS_API_KEY", "   ", "blank"),
        ("ACS_PROFILE", " ", "blank"),
        ("ACS_MAX_TOKENS", "", "integer"),
        ("ACS_TEMPERATURE", "", "number"),
        ("ACS_TIMEOUT", "1000001", "less than or equal"),
        ("ACS_TIMEOUT", "1e7", "less than or equal"),
        ("ACS_MAX_TOKENS", "-1", "greater than or equal"),
    ],
)
def test_empty_blank_and_out_of_bounds_values(settings_env: SettingsEnv, resolve, name: str, value: str, says: str) -> None:
    settings_env.env(**{name: value})
    error = config_error(resolve)
    assert name in error.message and says in error.message


@BOTH
@pytest.mark.parametrize("text", ['model = " "\n', 'api_key_command = "  "\n', '[profiles.p]\nmodel = "\\t"\n'])
def test_blank_values_in_the_file(settings_env: SettingsEnv, resolve, text: str) -> None:
    settings_env.write(text)
    error = config_error(lambda: resolve(profile="p") if "profiles" in text else resolve())
    assert "blank" in error.message


@pytest.mark.parametrize("name", ["ACS_MODEL", "ACS_API_KEY", "ACS_API_KEY_FILE", "ACS_PROFILE"])
def test_empty_optional_text_counts_as_unset(settings_env: SettingsEnv, name: str) -> None:
    settings_env.write('model = "file-model"\n')
    settings_env.env(**{name: ""})
    s = load_settings()
    assert s.model == "file-model" and s.api_key is None


def test_config_file_too_large_or_endless(settings_env: SettingsEnv, tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1024 * 1024) + "\n")
    settings_env.env(ACS_CONFIG=str(big))
    assert "larger than 1024 KiB" in config_error(load_settings).message
    settings_env.env(ACS_CONFIG="/dev/zero")
    assert "larger than" in config_error(load_settings).message


def test_config_file_nested_too_deeply(settings_env: SettingsEnv) -> None:
    settings_env.write("params = " + "{ a = " * 3000 + "1" + " }" * 3000 + "\n")
    config_error(load_settings)


# ------------------------------------------------------------------------------------ URL credentials and a key


@BOTH
@pytest.mark.parametrize(
    "url",
    ["http://user:pass@h:1/v1", "https://user:p%40ss@h/v1", "http://token@h/v1", "http://:pw@h/v1", "http://u:p@ss@h/v1"],
)
def test_url_credentials_with_a_key_are_refused(settings_env: SettingsEnv, resolve, url: str) -> None:
    settings_env.env(ACS_BASE_URL=url, ACS_API_KEY=KEY)
    error = config_error(resolve)
    assert "env ACS_BASE_URL" in error.message and "env ACS_API_KEY" in error.message
    assert "would replace the key" in error.message  # which one would win
    assert "pass" not in error.message.replace("password", "") and "token" not in error.message
    _no_key_shown(error)


def test_url_credentials_with_a_key_from_the_file_name_both_places(settings_env: SettingsEnv) -> None:
    settings_env.write('[profiles.p]\nbase_url = "http://u:secret-pw@h/v1"\napi_key_command = "echo sk-x-0001"\n')
    error = config_error(lambda: load_settings(profile="p"))
    assert "(profile p)" in error.message and "(profile p (api_key_command))" in error.message
    assert "secret-pw" not in error.message


@BOTH
def test_url_credentials_alone_are_fine(settings_env: SettingsEnv, resolve) -> None:
    settings_env.env(ACS_BASE_URL="http://user:pass@h:1/v1")
    s = resolve()
    assert s.base_url == "http://user:pass@h:1/v1" and s.api_key is None


@BOTH
@pytest.mark.parametrize("url", ["http://user:hunter2@h/v1 x", "ftp://user:hunter2@h/v1", "user:hunter2@h:8000/v1"])
def test_a_bad_url_with_credentials_is_shown_masked(settings_env: SettingsEnv, resolve, url: str) -> None:
    settings_env.env(ACS_BASE_URL=url)
    error = config_error(resolve)
    assert "hunter2" not in error.message and "***@" in error.message
