"""run_acs gives every test process the same clean environment."""

from __future__ import annotations

import pytest

from tests.helpers import DEFAULT_ENV, acs_env


def test_developer_environment_does_not_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "ACS_API_KEY": "sk-secret",
        "ACS_API_BASE": "http://example.invalid/v1",
        "NO_COLOR": "1",
        "FORCE_COLOR": "1",
        "HTTP_PROXY": "http://proxy.invalid:3128",
        "OPENAI_API_KEY": "sk-other",
    }.items():
        monkeypatch.setenv(name, value)
    env = acs_env(home="/tmp/h")
    assert not [k for k in env if k.startswith(("ACS_", "OPENAI_"))]
    assert "NO_COLOR" not in env and "FORCE_COLOR" not in env and "HTTP_PROXY" not in env
    assert env["HOME"] == "/tmp/h"
    for k, v in DEFAULT_ENV.items():
        assert env[k] == v


def test_caller_env_adds_overrides_and_removes() -> None:
    env = acs_env({"ACS_MODEL": "m", "TERM": "xterm-256color", "LC_ALL": None}, home="/tmp/h")
    assert env["ACS_MODEL"] == "m"
    assert env["TERM"] == "xterm-256color"
    assert "LC_ALL" not in env
