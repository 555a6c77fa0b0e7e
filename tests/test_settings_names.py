"""One name per setting across flag, environment and config file, the other spelling an alias;
"did you mean" for unknown keys; OPENAI_API_KEY / OPENAI_BASE_URL as fallbacks with the pairing
rule; the documented precedence (flags > ACS_ env > profile > file defaults > OPENAI_ > default)."""

from __future__ import annotations

import pytest

from acs_cli.settings import config_rows, load_settings, validated_settings
from tests.settingsutil import SettingsEnv, config_error, settings_env_fixture  # noqa: F401 - the fixture settings_env

BOTH = pytest.mark.parametrize("resolve", [load_settings, lambda **f: validated_settings(f)], ids=["load", "pydantic"])


@BOTH
def test_canonical_and_alias_spellings_in_every_layer(settings_env: SettingsEnv, resolve) -> None:
    settings_env.env(ACS_API_BASE="http://alias-env:1/v1")
    s = resolve()
    assert (s.base_url, s.api_base, s.sources["base_url"]) == ("http://alias-env:1/v1",) * 2 + ("env ACS_API_BASE",)
    settings_env.env(ACS_BASE_URL="http://canonical-env:1/v1")
    s = resolve()
    assert (s.base_url, s.sources["base_url"]) == ("http://canonical-env:1/v1", "env ACS_BASE_URL")
    assert resolve(api_base="http://alias-flag:1/v1").base_url == "http://alias-flag:1/v1"
    s = resolve(api_base="http://alias-flag:1/v1", base_url="http://canonical-flag:1/v1")
    assert (s.base_url, s.sources["base_url"]) == ("http://canonical-flag:1/v1", "flag --base-url")


@pytest.mark.parametrize(
    "text,expected",
    [
        ('api_base = "http://alias:1/v1"\n', "http://alias:1/v1"),
        ('base_url = "http://canonical:1/v1"\n', "http://canonical:1/v1"),
        ('api_base = "http://alias:1/v1"\nbase_url = "http://canonical:1/v1"\n', "http://canonical:1/v1"),
        ('base_url = "http://canonical:1/v1"\napi_base = "http://alias:1/v1"\n', "http://canonical:1/v1"),
        # layers first, then spelling: the profile's alias beats the top level's canonical name
        ('profile = "p"\nbase_url = "http://top:1/v1"\n[profiles.p]\napi_base = "http://profile:1/v1"\n', "http://profile:1/v1"),
    ],
)
def test_config_file_spellings(settings_env: SettingsEnv, text: str, expected: str) -> None:
    settings_env.write(text)
    assert load_settings().base_url == expected == validated_settings({}).base_url


def test_environment_names_any_case_upper_case_wins(settings_env: SettingsEnv) -> None:
    settings_env.env(acs_model="lower")
    assert load_settings().model == "lower"
    settings_env.env(ACS_MODEL="upper", Acs_Model="mixed")
    assert load_settings().model == "upper"


@pytest.mark.parametrize(
    "key,suggestion",
    [("max_token", "max_tokens"), ("apibase", "api_base"), ("base-url", "base_url"), ("temprature", "temperature"), ("modle", "model")],
)
@pytest.mark.parametrize("in_profile", [False, True])
def test_unknown_config_key_suggests_the_closest(settings_env: SettingsEnv, key: str, suggestion: str, in_profile: bool) -> None:
    path = settings_env.write(('[profiles.x]\n' if in_profile else "") + f"{key} = 5\n")
    error = config_error(load_settings)
    assert f"unknown setting {key!r}" in error.message
    assert f"{path}{' [profiles.x]' if in_profile else ''} line {2 if in_profile else 1}" in error.message
    assert f"did you mean {suggestion!r}?" in (error.hint or "")


def test_unknown_key_far_from_any_gets_the_list_only(settings_env: SettingsEnv) -> None:
    settings_env.write("zzzzzz = 1\n")
    error = config_error(load_settings)
    assert "did you mean" not in (error.hint or "") and "base_url" in (error.hint or "")


def test_unknown_profile_suggests_the_closest(settings_env: SettingsEnv) -> None:
    settings_env.write('[profiles.staging]\nmodel = "m"\n[profiles.local]\nmodel = "m"\n')
    error = config_error(lambda: load_settings(profile="stagin"))
    assert "local, staging" in error.message and "did you mean 'staging'?" in (error.hint or "")


# ------------------------------------------------------------------------------------ OPENAI_ fallbacks


@BOTH
def test_openai_base_url_is_the_last_fallback(settings_env: SettingsEnv, resolve) -> None:
    settings_env.env(OPENAI_BASE_URL="http://openai-env:1/v1")
    s = resolve()
    assert (s.base_url, s.sources["base_url"]) == ("http://openai-env:1/v1", "env OPENAI_BASE_URL")
    settings_env.write('base_url = "http://file:1/v1"\n')
    assert resolve().base_url == "http://file:1/v1"  # the config file comes before OPENAI_
    settings_env.env(ACS_API_BASE="http://acs:1/v1")
    assert resolve().base_url == "http://acs:1/v1"


@BOTH
def test_openai_key_goes_with_openai_base_url(settings_env: SettingsEnv, resolve) -> None:
    settings_env.env(OPENAI_BASE_URL="http://paired:1/v1", OPENAI_API_KEY="sk-openai-000001")
    s = resolve()
    assert s.api_key is not None and s.api_key.get_secret_value() == "sk-openai-000001"
    assert s.sources["api_key"] == "env OPENAI_API_KEY" and not s.notes


@BOTH
@pytest.mark.parametrize("base", ["https://api.openai.com/v1", "https://API.OpenAI.com/v1/"])
def test_openai_key_goes_to_api_openai_com_over_https(settings_env: SettingsEnv, resolve, base: str) -> None:
    settings_env.env(ACS_BASE_URL=base, OPENAI_API_KEY="sk-openai-000001")
    s = resolve()
    assert s.api_key is not None and s.api_key.get_secret_value() == "sk-openai-000001"


@BOTH
@pytest.mark.parametrize(
    "env,config",
    [
        ({}, None),  # the default base URL: a local server
        ({"ACS_BASE_URL": "http://127.0.0.1:8000/v1"}, None),
        ({"ACS_API_BASE": "https://other.example/v1"}, None),
        ({"ACS_BASE_URL": "http://api.openai.com/v1"}, None),  # plain http: not the real thing
        ({"ACS_BASE_URL": "https://api.openai.com.evil.example/v1"}, None),
        ({"OPENAI_BASE_URL": "https://a.example/v1"}, 'base_url = "https://b.example/v1"\n'),  # the file's URL wins
        ({"ACS_BASE_URL": "https://x.example/v1", "OPENAI_BASE_URL": "https://x.example/v1"}, None),
    ],
)
def test_openai_key_never_goes_to_a_url_it_was_not_paired_with(settings_env: SettingsEnv, resolve, env, config) -> None:
    settings_env.env(OPENAI_API_KEY="sk-openai-000001", **env)
    if config:
        settings_env.write(config)
    s = resolve()
    assert s.api_key is None
    assert "OPENAI_API_KEY is set but not used" in s.notes["api_key"]
    row = {name: value for name, value, _ in config_rows(s)}["api_key"]
    assert row.startswith("(not set); OPENAI_API_KEY is set but not used") and "sk-openai" not in row


@BOTH
def test_acs_key_and_file_keys_come_before_openai_key(settings_env: SettingsEnv, resolve, tmp_path) -> None:
    settings_env.env(OPENAI_BASE_URL="http://paired:1/v1", OPENAI_API_KEY="sk-openai-000001")
    key_file = tmp_path / "key"
    key_file.write_text("sk-from-file-0001\n")
    key_file.chmod(0o600)
    settings_env.write(f'api_key_file = "{key_file}"\n')
    s = resolve()
    assert s.api_key.get_secret_value() == "sk-from-file-0001" and s.sources["api_key"] == "file defaults (api_key_file)"
    settings_env.env(ACS_API_KEY="sk-acs-env-0001")
    s = resolve()
    assert s.api_key.get_secret_value() == "sk-acs-env-0001" and s.sources["api_key"] == "env ACS_API_KEY"
    assert not s.notes  # the OpenAI key is not "unused" because of the pairing rule: a higher layer won


def test_empty_acs_key_counts_as_unset(settings_env: SettingsEnv) -> None:
    settings_env.env(ACS_API_KEY="", OPENAI_BASE_URL="http://paired:1/v1", OPENAI_API_KEY="sk-openai-000001")
    assert load_settings().sources["api_key"] == "env OPENAI_API_KEY"


# ------------------------------------------------------------------------------------ precedence, whole


@BOTH
def test_every_layer_in_order(settings_env: SettingsEnv, resolve) -> None:
    settings_env.write('profile = "p"\nmodel = "file"\ntimeout = 4\nmax_tokens = 5\n[profiles.p]\nmodel = "profile"\ntimeout = 3\n')
    settings_env.env(OPENAI_BASE_URL="http://openai:1/v1", ACS_TIMEOUT="2")
    s = resolve(model="flag")
    assert (s.model, s.timeout, s.max_tokens, s.base_url, s.temperature) == ("flag", 2.0, 5, "http://openai:1/v1", None)
    assert [s.sources[n] for n in ("model", "timeout", "max_tokens", "base_url", "temperature", "profile")] == [
        "flag --model", "env ACS_TIMEOUT", "file defaults", "env OPENAI_BASE_URL", "default", "file defaults",
    ]


def test_params_tables_merge_key_by_key(settings_env: SettingsEnv) -> None:
    settings_env.write('profile = "p"\nparams = { top_k = 1, min_p = 0.1 }\n[profiles.p]\nparams = { top_k = 40 }\n')
    settings_env.env(ACS_PARAMS='{"seed_text": "x"}')
    for s in (load_settings(), validated_settings({})):
        assert s.params == {"top_k": 40, "min_p": 0.1, "seed_text": "x"}
        assert s.sources["params"] == "env ACS_PARAMS, profile p, file defaults"


def test_stop_from_the_environment(settings_env: SettingsEnv) -> None:
    settings_env.env(ACS_STOP="##")
    assert load_settings().stop == ("##",)
    settings_env.env(ACS_STOP='["a", "\\n\\n"]')
    assert load_settings().stop == ("a", "\n\n")
