"""The start-up shortcut in load_settings must agree with pydantic-settings on every input."""

from __future__ import annotations

import pytest

from acs_cli.errors import ConfigError
from acs_cli.settings import FIELDS, _fast, load_settings, settings_model, validated_settings

ENVIRONMENTS = [
    {},
    {"ACS_API_BASE": "http://127.0.0.1:9/v1"},
    {"ACS_API_BASE": "  https://example.com/v1/  "},
    {"acs_api_base": "http://lower.case:8000/v1"},
    {"ACS_API_BASE": "example.com/v1"},
    {"ACS_API_BASE": "http://exa mple.com"},
    {"ACS_API_BASE": "ftp://x/v1"},
    {"ACS_API_BASE": "http://"},
    {"ACS_API_BASE": ""},
    {"ACS_API_BASE": "http://h:99999/v1"},
    {"ACS_API_KEY": "sk-secret"},
    {"ACS_API_KEY": ""},
    {"ACS_MODEL": "llama"},
    {"ACS_MODEL": ""},
    {"ACS_TIMEOUT": "30"},
    {"ACS_TIMEOUT": "0.5"},
    {"ACS_TIMEOUT": ".5"},
    {"ACS_TIMEOUT": "1e3"},
    {"ACS_TIMEOUT": " 7 "},
    {"ACS_TIMEOUT": "0"},
    {"ACS_TIMEOUT": "-1"},
    {"ACS_TIMEOUT": "abc"},
    {"ACS_TIMEOUT": "inf"},
    {"ACS_TIMEOUT": "nan"},
    {"ACS_TIMEOUT": ""},
]
FLAGS = [
    {},
    {"api_base": "http://flag:1/v1"},
    {"api_base": "nope"},
    {"model": "m"},
    {"timeout": 2.5},
    {"timeout": 0.0},
]


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("ACS_CONFIG", raising=False)


def _outcome(fn, *args):
    try:
        s = fn(*args)
    except ConfigError as exc:
        return ("error", exc.message)
    key = s.api_key.get_secret_value() if s.api_key is not None else None
    return ("ok", s.api_base, key, s.model, s.timeout)


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: ",".join(f) or "no-flags")
@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda e: ";".join(f"{k}={v}" for k, v in e.items()) or "empty")
def test_shortcut_agrees_with_pydantic_settings(monkeypatch, env, flags):
    for name in list(__import__("os").environ):
        if name.lower().startswith("acs_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reference = _outcome(validated_settings, flags)
    assert _outcome(lambda: load_settings(**flags)) == reference
    fast = _fast(flags)
    if fast is not None:  # whenever the shortcut answers, it answers what pydantic-settings would
        assert reference[0] == "ok"


def test_fields_match_the_pydantic_model():
    assert tuple(settings_model().model_fields) == FIELDS


def test_secret_never_shows_its_value(monkeypatch):
    monkeypatch.setenv("ACS_API_KEY", "sk-very-secret")
    s = load_settings()
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(s)
    assert s.api_key is not None and s.api_key.get_secret_value() == "sk-very-secret"


CONFIG_FILES = [
    "",
    'model = "file-model"\nmax_tokens = 64\ntimeout = 30\n',
    'profile = "p"\n[profiles.p]\napi_base = "http://profile:1/v1"\ntemperature = 0.5\nstop = "##"\nseed = 3\n',
    'profile = "p"\nmax_tokens = 9\n[profiles.p]\nmax_tokens = 10\nparams = { top_k = 40 }\ntop_p = 1\n',
    'api_key = "sk-file-key-0001"\n',
    'api_key_command = "echo sk-command-key-01"\n[profiles.q]\nmodel = "q"\n',
    'timeout = 0\n',
    'timeout = true\n',
    'max_tokens = 2.0\n',
    'max_tokens = -1\n',
    'temperature = "hot"\n',
    'stop = [1, 2]\n',
    'api_base = "nope"\n',
    'model = ""\n',
    'seed = 1.5\n',
]


@pytest.mark.parametrize("flags", FLAGS[:4], ids=lambda f: ",".join(f) or "no-flags")
@pytest.mark.parametrize("env", ENVIRONMENTS[:4] + ENVIRONMENTS[10:14], ids=lambda e: ";".join(f"{k}={v}" for k, v in e.items()) or "empty")
@pytest.mark.parametrize("text", CONFIG_FILES, ids=range(len(CONFIG_FILES)))
def test_shortcut_agrees_with_pydantic_settings_with_a_config_file(monkeypatch, tmp_path, text, env, flags):
    for name in list(__import__("os").environ):
        if name.lower().startswith("acs_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "config" / "acs" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    path.chmod(0o600)

    def full(fn):
        try:
            s = fn()
        except ConfigError as exc:
            return ("error", exc.message)
        key = s.api_key.get_secret_value() if s.api_key is not None else None
        return ("ok", s.api_base, key, s.model, s.timeout, s.max_tokens, s.temperature, s.top_p, s.stop,
                s.seed, s.params, s.profile, s.warnings, s.sources, s.config_file)

    reference = full(lambda: validated_settings(dict(flags)))
    assert full(lambda: load_settings(**flags)) == reference


@pytest.mark.parametrize("text", CONFIG_FILES[:6])
def test_shortcut_answers_for_a_plain_config_file(monkeypatch, tmp_path, text):
    """A valid file does not cost the pydantic import: the shortcut resolves it itself."""
    for name in list(__import__("os").environ):
        if name.lower().startswith("acs_"):
            monkeypatch.delenv(name)
    path = tmp_path / "config" / "acs" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert _fast({}) is not None
