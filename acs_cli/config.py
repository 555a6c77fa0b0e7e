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
from acs_cli.secrets import key_problem, mask_url, remember_secret
from acs_cli.settings_table import (
    FILE_KEYS,
    SECRET,
    TABLE,
    TABLE_KIND,
    URL,
    ResolvedSettings,
)

KEY_FILE_LIMIT = 64 * 1024  # a key file or a key command's output past this is not a key
KEY_COMMAND_SECONDS = 60.0  # api_key_command may wait for a password prompt, not forever
CONFIG_LIMIT = 1024 * 1024  # a config file is a few lines; past this it is the wrong file


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
    """The parsed file, or None when there is none. Malformed files, unknown keys (with the
    closest known one) and tables where a value belongs raise ConfigError."""
    path = path or config_path()
    raw = _read_bounded(path, CONFIG_LIMIT, "config file", missing_ok=True)
    if raw is None:
        return None
    import tomllib

    text = _utf8(raw, str(path))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        problem = message[: match.start()].strip() if match else message
        where = f"{path} line {match.group(1)}" if match else str(path)
        raise ConfigError(f"{where}: {problem}", "fix the TOML syntax there (strings need quotes)") from None
    except RecursionError:
        raise ConfigError(f"{path}: tables or arrays nested too deeply", "flatten the file") from None
    mode = os.stat(path).st_mode
    private = not mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH)
    profiles_table = data.pop("profiles", {})
    default_profile = data.pop("profile", None)
    config = ConfigFile(path, text, {}, {}, None)
    config.defaults = _checked(config, data, None)
    if default_profile is not None and not isinstance(default_profile, str):
        raise ConfigError(f"{config.where('profile')}: profile must be a string", 'write profile = "NAME"')
    config.default_profile = default_profile
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


def _read_bounded(path: Path, limit: int, what: str, *, missing_ok: bool = False) -> bytes | None:
    """At most `limit` bytes of a file; more is a ConfigError (a key or config file is small)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise ConfigError(f"cannot read {what} {path}: no such file", "create the file, or fix the path") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}", "check the path and the file's permissions") from None
    if len(raw) > limit:
        raise ConfigError(f"{what} {path} is larger than {limit // 1024} KiB", f"point {what} at the right file")
    return raw


def _utf8(raw: bytes, where: str) -> str:
    """The bytes as UTF-8 text, or a ConfigError naming the line of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{where} line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8 text",
            "save the file as UTF-8 (a binary file is not a config or key file)",
        ) from None


def _checked(config: ConfigFile, table: dict[str, Any], profile: str | None) -> dict[str, Any]:
    """The table, once every key is a setting (or an alias of one) and only params is a table."""
    for key, value in table.items():
        if key not in FILE_KEYS:
            import difflib

            known = sorted(s.keys[0] for s in TABLE if s.keys) + ["profile"]
            close = difflib.get_close_matches(key, list(FILE_KEYS) + ["profile"], n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{config.where(key, profile)}: unknown setting {key!r}", hint + "known settings: " + ", ".join(known))
        if isinstance(value, dict) and FILE_KEYS[key].kind is not TABLE_KIND:
            raise ConfigError(f"{config.where(key, profile)}: {key} must be a value, not a table", f"write {key} = VALUE")
    return table


def select_profile(config: ConfigFile | None, requested: str | None) -> tuple[str | None, dict[str, Any]]:
    """The profile's name and its table; an unknown name is an error listing the known ones."""
    name = requested or (config.default_profile if config else None)
    if not name:
        return None, {}
    if config is None or name not in config.profiles:
        import difflib

        known = ", ".join(sorted(config.profiles)) if config and config.profiles else "none"
        where = str(config.path) if config else str(config_path())
        close = difflib.get_close_matches(name, list(config.profiles), n=1) if config else []
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"no profile {name!r} in {where} (profiles: {known})",
            f"{hint}add a [profiles.{name}] section to {where}, or pick another with --profile / ACS_PROFILE",
        )
    return name, config.profiles[name]


def read_key(resolved_from: str, value: str, *, kind: str) -> tuple[str, list[str]]:
    """The key from api_key_file or api_key_command: bounded in size (and, for the command, in
    time), UTF-8, stripped, one line of printable ASCII; never shows the key or the output."""
    name = "api_key_file" if kind == "file" else "api_key_command"
    warnings: list[str] = []
    if kind == "file":
        path = Path(value).expanduser()
        raw = _read_bounded(path, KEY_FILE_LIMIT, f"api_key_file ({resolved_from})")
        assert raw is not None
        if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(f"warning: api_key_file {path} can be read by others; chmod 600 it")
    else:
        raw = _run_key_command(value, resolved_from)
    try:
        key = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"the key from {name} ({resolved_from}) is not UTF-8 text", "it must hold or print the key alone, as text") from None
    remember_secret(key)
    if not key:
        raise ConfigError(f"the API key from {name} ({resolved_from}) is empty", "it must print or hold the key")
    problem = key_problem(key)
    if problem:
        raise ConfigError(f"the key from {name} ({resolved_from}) is unusable: {problem}", "it must hold or print the key alone, on one line")
    return key, warnings


def _run_key_command(command: str, resolved_from: str) -> bytes:
    """The command's stdout, at most KEY_FILE_LIMIT bytes within KEY_COMMAND_SECONDS.

    It runs without a shell, in its own process group so that a timeout or an endless output
    ends it and its children; its stderr goes nowhere (it could hold the key).
    """
    import shlex
    import subprocess

    hint = "check the command; it must print the key on stdout"
    try:
        argv = shlex.split(command)
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
        )
    except (OSError, ValueError, IndexError) as exc:
        reason = str(getattr(exc, "strerror", None) or exc or "it is empty")
        raise ConfigError(f"api_key_command ({resolved_from}) could not run: {reason}", hint) from None
    try:
        output, status = _collect(process)
    finally:  # out of time, too much output, or Ctrl-C: end it (not yet reaped, so the pid is its own)
        if process.returncode is None:
            _kill_group(process.pid)
        process.wait()
    if len(output) > KEY_FILE_LIMIT:
        raise ConfigError(f"api_key_command ({resolved_from}) printed more than {KEY_FILE_LIMIT // 1024} KiB", hint)
    if status is None:
        raise ConfigError(f"api_key_command ({resolved_from}) could not run: it timed out after {KEY_COMMAND_SECONDS:g} s", hint)
    if status != 0:
        # the hint does not repeat the command: its text may hold a token of its own
        raise ConfigError(f"api_key_command ({resolved_from}) failed with exit status {status}", "run the command yourself to see why")
    return output


def _collect(process: Any) -> tuple[bytes, int | None]:
    """Up to KEY_FILE_LIMIT + 1 bytes of stdout and the exit status (None: out of time).

    Reading stops at end of output, or soon after the command exits even if something it
    started in the background still holds its stdout open.
    """
    import selectors
    import subprocess
    import time

    deadline = time.monotonic() + KEY_COMMAND_SECONDS
    output = bytearray()
    with process.stdout, selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while len(output) <= KEY_FILE_LIMIT:
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(output), None
            if not selector.select(min(left, 0.1)):
                if process.poll() is not None:
                    break  # it ended; whatever still holds the pipe is not the key
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            output += chunk
    if len(output) > KEY_FILE_LIMIT:
        return bytes(output), 0
    try:
        return bytes(output), process.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return bytes(output), None


def _kill_group(pid: int) -> None:
    """End the command and whatever it started (nothing to do when they already ended)."""
    import contextlib
    import signal

    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def config_rows(settings: ResolvedSettings) -> list[tuple[str, str, str]]:
    """`acs config show`: (name, value, source) per setting, in the table's order. The key shows
    whether it is set, where from and its length, never any of its characters; a URL's
    credentials are masked."""
    import json

    rows = [("config file", settings.config_file or f"{config_path()} (none)", "")]
    for setting in TABLE:
        if setting.name in ("api_key_file", "api_key_command"):
            continue  # shown as the key's source
        value = getattr(settings, setting.name)
        if setting.kind is SECRET:
            text = f"set, {len(value)} characters" if value is not None else "(not set)"
        elif value is None or value == () or value == {}:
            text = "(not set)"
        elif isinstance(value, tuple | dict):
            text = json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)
        else:
            text = mask_url(str(value)) if setting.kind is URL else str(value)
        if setting.name in settings.notes:
            text += f"; {settings.notes[setting.name]}"
        rows.append((setting.name, text, settings.sources.get(setting.name, "default")))
    return rows
