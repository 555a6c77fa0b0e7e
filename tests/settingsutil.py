"""In-process settings tests: a clean environment and a config file of the test's own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from acs_cli.errors import ConfigError, ExitStatus


@dataclass
class SettingsEnv:
    monkeypatch: pytest.MonkeyPatch
    config: Path

    def env(self, **variables: str) -> None:
        for name, value in variables.items():
            self.monkeypatch.setenv(name, value)

    def write(self, text: str | bytes, mode: int = 0o600) -> Path:
        if isinstance(text, bytes):
            self.config.write_bytes(text)
        else:
            self.config.write_text(text, encoding="utf-8")
        self.config.chmod(mode)
        return self.config


@pytest.fixture(name="settings_env")
def settings_env_fixture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SettingsEnv]:
    """No ACS_ or OPENAI_ variable from the developer; ACS_CONFIG names a file (absent until written)."""
    for name in list(os.environ):
        if name.upper().startswith(("ACS_", "OPENAI_")):
            monkeypatch.delenv(name)
    config = tmp_path / "config.toml"
    monkeypatch.setenv("ACS_CONFIG", str(config))
    yield SettingsEnv(monkeypatch, config)


def config_error(resolve: Callable[[], object]) -> ConfigError:
    """The ConfigError a resolution raises (exit 3); anything else fails the test."""
    with pytest.raises(ConfigError) as caught:
        resolve()
    assert caught.value.status == ExitStatus.CONFIG
    assert caught.value.hint, caught.value.message
    return caught.value
