"""`acs config show`: every effective setting and where it came from (the key never shown)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acs_cli.outcome import Outcome
from acs_cli.settings import config_rows, validated_settings
from acs_cli.text import make_visible

if TYPE_CHECKING:
    from acs_cli.terminal import Terminal


def config_show(term: Terminal, **flags: Any) -> Outcome:
    given = {k: v for k, v in flags.items() if v is not None}
    settings = validated_settings(given)
    for warning in settings.warnings:
        term.message(warning, "warn")
    rows = config_rows(settings)
    width = max(len(r[0]) for r in rows)
    text = "".join(f"{n:<{width}}  {v}" + (f"  ({src})" if src else "") + "\n" for n, v, src in rows)
    term.write_out(make_visible(text).encode())
    return Outcome()
