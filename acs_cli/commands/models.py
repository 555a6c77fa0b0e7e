"""`acs models`: the served models, a table on a terminal, one id per line when piped, or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from acs_cli.api import Api
from acs_cli.options import ConnectionOptions
from acs_cli.outcome import Outcome
from acs_cli.secrets import mask_url
from acs_cli.settings import load_settings
from acs_cli.text import make_visible

if TYPE_CHECKING:
    from acs_cli.terminal import Terminal


def list_models(conn: ConnectionOptions, as_json: bool, term: Terminal) -> Outcome:
    settings = load_settings(**conn.settings_flags())
    for warning in settings.warnings:
        term.message(warning, "warn")
    from acs_cli.sinks.terminal import retry_notice

    with Api(settings, retries=conn.retries, warn=lambda text: term.message(text, "warn"), on_retry=retry_notice(term)) as api:
        if as_json:
            from acs_cli.sinks.json import dumps  # its module brings the other sinks: only for --json

            term.write_out(dumps(api.get_json("models"), indent=2) + b"\n")
            return Outcome()
        models = api.list_models()
    if not term.stdout_tty:
        ids = [str(m["id"]) for m in models if m.get("id") is not None]
        term.write_out("".join(f"{i}\n" for i in ids).encode("utf-8", "replace"))  # data: exact
        return Outcome()
    from rich.table import Table  # Rich only for the table on a terminal: a pipe gets plain ids

    table = Table(box=None, header_style="bold" if term.stdout_colour else None, pad_edge=False)
    table.add_column("id")
    table.add_column("owner")
    table.add_column("max_model_len", justify="right")
    for m in models:
        length = m.get("max_model_len")
        table.add_row(
            make_visible(str(m.get("id", ""))),
            make_visible(str(m.get("owned_by") or "")),
            str(length) if isinstance(length, int) and not isinstance(length, bool) else "",
        )
    term.console("stdout").print(table)
    if not models:
        term.message(f"the server at {make_visible(mask_url(settings.api_base))} lists no models", "dim")
    return Outcome()
