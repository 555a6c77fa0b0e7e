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
