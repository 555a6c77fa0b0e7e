"""The config file: where it is, reading it (TOML), its profiles, and errors that name the line.

    $XDG_CONFIG_HOME/acs/config.toml   (default ~/.config/acs/config.toml; ACS_CONFIG overrides)

Top-level keys are defaults for every profile; `[profiles.NAME]` tables override them when that
profile is selected (`--profile NAME`, `ACS_PROFILE`, or the file's own `profile = "NAME"`).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acs_cli.errors import ConfigError

# the keys a config file may hold, at the top level and in a profile
SERVER_KEYS = ("api_base", "api_key", "api_key_file", "api_key_command", "model", "timeout")
REQUEST_KEYS = ("max_tokens", "temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "params")
FILE_KEYS = frozenset(SERVER_KEYS + REQUEST_KEYS)


def config_path() -> Path:
    override = os.environ.get("ACS_CONFIG")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "acs" / "config.toml"


@dataclass
class ConfigFile:
    path: Path
    text: str
    defaults: dict[str, Any]
    profiles: dict[str, dict[str, Any]]
    default_profile: str | None
    private: bool  # readable by its owner only
    warnings: list[str] = field(default_factory=list)

    def line_of(self, key: str, profile: str | None = None) -> int | None:
        """The line where `key` is set: in [profiles.NAME] when given, else at the top level."""
        section: str | None = None
        wanted = f"profiles.{profile}" if profile else None
        for number, line in enumerate(self.text.splitlines(), 1):
            stripped = line.strip()
            header = re.match(r"\[\s*([^\]]+?)\s*\]$", stripped)
            if header:
                section = header.group(1).replace('"', "").replace("'", "")
                continue
            if section == wanted and re.match(rf"{re.escape(key)}\s*=", stripped):
                return number
        return None

    def where(self, key: str, profile: str | None = None) -> str:
        line = self.line_of(key, profile)
        table = f" [profiles.{profile}]" if profile else ""
        return f"{self.path}{table}" + (f" line {line}" if line else "")


def read_config(path: Path | None = None) -> ConfigFile | None:
    """The parsed file, or None when there is none. Malformed files raise ConfigError."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", "check the file's permissions, or set ACS_CONFIG") from None
    import tomllib

    text = raw.decode("utf-8", "replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        problem = message[: match.start()].strip() if match else message
        where = f"{path} line {match.group(1)}" if match else str(path)
        raise ConfigError(f"{where}: {problem}", "fix the TOML syntax there (strings need quotes)") from None
    mode = os.stat(path).st_mode
    private = not mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH)
    profiles_table = data.pop("profiles", {})
    default_profile = data.pop("profile", None)
    config = ConfigFile(path, text, {}, {}, None, private)
    if default_profile is not None and not isinstance(default_profile, str):
        raise ConfigError(f"{config.where('profile')}: profile must be a string", 'write profile = "NAME"')
    config.default_profile = default_profile
    config.defaults = _checked(config, data, None)
    if not isinstance(profiles_table, dict):
        raise ConfigError(f"{config.where('profiles')}: profiles must be tables", "write [profiles.NAME] sections")
    for name, table in profiles_table.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: profiles.{name} must be a table", f"write it as a [profiles.{name}] section")
        config.profiles[name] = _checked(config, table, name)
    has_key = "api_key" in config.defaults or any("api_key" in p for p in config.profiles.values())
    if has_key and not private:
        config.warnings.append(
            f"warning: {path} holds an api_key and others can read it; chmod 600 it, or use api_key_file / api_key_command"
        )
    return config


def _checked(config: ConfigFile, table: dict[str, Any], profile: str | None) -> dict[str, Any]:
    for key, value in table.items():
        if key not in FILE_KEYS:
            raise ConfigError(
                f"{config.where(key, profile)}: unknown setting {key!r}",
                "known settings: " + ", ".join(sorted(FILE_KEYS)),
            )
        if isinstance(value, dict) and key != "params":
            raise ConfigError(f"{config.where(key, profile)}: {key} must be a value, not a table", f"write {key} = VALUE")
    out = dict(table)
    if isinstance(out.get("stop"), str):
        out["stop"] = [out["stop"]]
    return out


def select_profile(config: ConfigFile | None, requested: str | None) -> tuple[str | None, dict[str, Any]]:
    """The profile's name and its table; an unknown name is an error listing the known ones."""
    name = requested or (config.default_profile if config else None)
    if not name:
        return None, {}
    if config is None or name not in config.profiles:
        known = ", ".join(sorted(config.profiles)) if config and config.profiles else "none"
        where = str(config.path) if config else str(config_path())
        raise ConfigError(
            f"no profile {name!r} in {where} (profiles: {known})",
            f"add a [profiles.{name}] section to {where}, or pick another with --profile / ACS_PROFILE",
        )
    return name, config.profiles[name]


def read_key(resolved_from: str, value: str, *, kind: str) -> tuple[str, list[str]]:
    """The key from api_key_file or api_key_command; never shows the key or the command's output."""
    warnings: list[str] = []
    if kind == "file":
        path = Path(value).expanduser()
        try:
            key = path.read_text(encoding="utf-8").strip()
            mode = path.stat().st_mode
        except OSError as exc:
            raise ConfigError(
                f"cannot read api_key_file {path} ({resolved_from}): {exc.strerror}",
                "create the file with the key alone in it, or fix the path",
            ) from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(f"warning: api_key_file {path} can be read by others; chmod 600 it")
    else:
        import shlex
        import subprocess

        try:
            argv = shlex.split(value)
            done = subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            reason = "it timed out after 60 s" if isinstance(exc, subprocess.TimeoutExpired) else str(getattr(exc, "strerror", None) or exc)
            raise ConfigError(
                f"api_key_command ({resolved_from}) could not run: {reason}",
                "check the command; it must print the key on stdout",
            ) from None
        if done.returncode != 0:
            raise ConfigError(
                f"api_key_command ({resolved_from}) failed with exit status {done.returncode}",
                f"run it yourself to see why: {value}",
            )
        key = done.stdout.decode("utf-8", "replace").strip()
    if not key:
        raise ConfigError(f"the API key from {kind == 'file' and 'api_key_file' or 'api_key_command'} ({resolved_from}) is empty", "it must print or hold the key")
    return key, warnings


def redact_key(key: str) -> str:
    """What `acs config show` prints for a key: the last 4 characters at most."""
    if len(key) >= 12:
        return "****" + key[-4:]
    return "****"
