"""`acs doctor`: check the configured server step by step and print a checklist.

The checks run in order, each building on the ones before it:

    base URL       the settings load and the base URL parses (a key over plain http:// to a host
                   that is not loopback by address warns)
    DNS            getaddrinfo of the host (of the proxy when one from the environment is used)
    TCP connect    a connection to each resolved address in turn until one answers
    TLS            https only: handshake, certificate subject, issuer and days to expiry, with the
                   same CA rules as acs's requests (SSL_CERT_FILE / SSL_CERT_DIR, else certifi)
    auth           GET /models answers (401/403: the key is refused or missing)
    model          the configured model is served, or exactly one is served when none is configured
    completion     a short streamed completion is accepted: 200 and text/event-stream
    stream         the body parses as an event stream of completion frames (no error frame, not
                   cut, within the probe's limits: a server that ignores max_tokens warns)
    finish reason  every choice finished
    [DONE]         the stream ended with data: [DONE]
    usage          a usage chunk arrived (more tokens than max_tokens warns)
    first token    the time from sending the request to the first text
    buffering      whether the text frames arrived spread over time or all at once at the end

With --chat the probe is one user message to POST /chat/completions, read by the chat state
(reasoning and tool calls count as text), and one more line, after stream, says whether the
first frame carried only the role (informational: it always passes).

A check is pass, warn, fail or skip (it depends on one that failed, or does not apply). The exit
status is 0 when no check failed (warnings are allowed), else the status of the first failed
check, with the meaning it has for `acs complete` (acs_cli.errors.ExitStatus).

The package: `checks` does the network steps before the probe, `probe` sends the probe and reads
its answer into a `judge.Probe` record, `judge` holds the pure judgements, `render` the outputs,
`report` the records; the network rules (loopback, proxy, CAs) are acs_cli.netrules, the very
rules acs's requests follow.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .report import NAMES, Report, hostport, skipped

if TYPE_CHECKING:
    import socket

    from acs_cli.settings import ResolvedSettings
    from acs_cli.terminal import Terminal

__all__ = ["NAMES", "DoctorOptions", "Report", "diagnose", "doctor"]


@dataclass
class DoctorOptions:
    base_url: str | None = None
    model: str | None = None
    timeout: str | None = None
    max_tokens: int = 16
    as_json: bool = False
    profile: str | None = None
    chat: bool = False  # probe POST /chat/completions (and judge its first frame) instead


def doctor(opts: DoctorOptions, term: Terminal) -> int:
    """Run the checks and print them on stdout; the exit status."""
    from .render import render_json, render_text

    report = diagnose(opts)
    if opts.as_json:
        term.write_out(render_json(report))
    else:
        width = None
        if term.stdout_tty:
            width = term.width or shutil.get_terminal_size((80, 24)).columns
        term.write_out(render_text(report, term.stdout_colour, width).encode("utf-8", "replace"))
    return report.exit_status


def diagnose(opts: DoctorOptions) -> Report:
    from . import checks

    report = Report()
    settings = checks.check_settings(report, opts.base_url, opts.model, opts.timeout, opts.profile)
    if settings is None:
        report.skip_rest("the settings are invalid")
        return report
    sock = _connect(report, settings.api_base)
    if sock is None:
        return report
    sock.close()
    _over_http(report, settings, opts.max_tokens, opts.chat)
    return report


def _connect(report: Report, base: str) -> socket.socket | None:
    """DNS, TCP and TLS to the server (or to the proxy the environment names): the connected
    socket, or None once the failure and the skipped checks are in the report."""
    from acs_cli.netrules import proxy_address

    from . import checks

    parts = urlsplit(base)
    https = parts.scheme == "https"
    host = parts.hostname or ""
    proxy = proxy_address(base)
    if proxy is not None:
        target_host, target_port = proxy
        where: str | None = f"the proxy {hostport(target_host, target_port)}"
    else:
        target_host, target_port, where = host, parts.port or (443 if https else 80), None
    infos = checks.check_dns(report, target_host, target_port, where)
    if infos is None:
        report.skip_rest("DNS failed")
        return None
    sock = checks.check_tcp(report, infos, target_host, target_port, where)
    if sock is None:
        report.skip_rest("TCP connect failed")
        return None
    if not https:
        report.add(skipped("TLS", "plain http://, no TLS"))
    elif proxy is not None:
        report.add(skipped("TLS", "through a proxy the handshake happens inside its tunnel; the HTTP checks below cover it"))
    elif not checks.check_tls(report, sock, host):  # closes the socket it wrapped
        report.skip_rest("TLS failed")
        return None
    return sock


def _over_http(report: Report, settings: ResolvedSettings, max_tokens: int, chat: bool = False) -> None:
    """auth, model and the probe's checks, through acs's own client."""
    from acs_cli.api import Api

    from . import checks
    from .judge import judge_model, judge_probe
    from .probe import CHAT, COMPLETIONS, run_probe

    with Api(settings, retries=0, warn=lambda text: None) as api:
        models = checks.check_auth(report, api, api.has_key)
        if models is None:
            report.skip_rest("GET /models failed")
            return
        ids = [str(m.get("id")) for m in models if m.get("id") is not None]
        check, model = judge_model(ids, settings.model, settings.api_base)
        report.add(check)
        if model is None:
            report.skip_rest("no model to probe")
            return
        probe = run_probe(api, CHAT if chat else COMPLETIONS, model, max_tokens, settings.timeout)
        report.extend(judge_probe(probe))
