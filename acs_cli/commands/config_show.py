"""`acs config show`: every effective setting and where it came from (the key never shown)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from acs_cli.outcome import Outcome
from acs_cli.text import make_visible

if TYPE_CHECKING:
    from acs_cli.terminal import Terminal


def config_show(term: Terminal, **flags: Any) -> Outcome:
    from acs_cli.config import config_path, redact_key
    from acs_cli.settings import FIELDS, validated_settings

    given = {k: v for k, v in flags.items() if v is not None}
    settings = validated_settings(given)
    for warning in settings.warnings:
        term.message(warning, "warn")
    path = settings.config_file or f"{config_path()} (none)"
    rows: list[tuple[str, str, str]] = [("config file", path, "")]
    for name in FIELDS:
        if name in ("api_key_file", "api_key_command"):
            continue
        if name == "api_key":
            value = redact_key(settings.api_key.get_secret_value()) if settings.api_key is not None else "(not set)"
        else:
            value = getattr(settings, name)
            if value is None or value == () or value == {}:
                value = "(not set)"
            elif isinstance(value, tuple | list | dict):
                value = json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)
        source = settings.sources.get(name, "default")
        if source == "env":
            source = f"env ACS_{name.upper()}"
        elif source == "flag":
            source = f"flag --{name.replace('_', '-')}"
        elif source == "file":
            source = "file defaults"
        rows.append((name, str(value), source))
    width = max(len(r[0]) for r in rows)
    text = "".join(f"{n:<{width}}  {v}" + (f"  ({src})" if src else "") + "\n" for n, v, src in rows)
    term.write_out(make_visible(text).encode())
    return Outcome()
