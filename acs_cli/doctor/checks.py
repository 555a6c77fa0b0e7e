"""The steps before the probe: settings and base URL, DNS, TCP connect, TLS, auth (GET /models).
Each does its I/O, times it, and adds its check to the report; what a certificate or a model list
means is decided by the pure functions of acs_cli.doctor.judge."""

from __future__ import annotations

import os
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from acs_cli.errors import AcsError, ConfigError, ExitStatus
from acs_cli.netrules import CONNECT_TIMEOUT, PLAIN_HTTP, ca_bundle, is_loopback, ssl_context, tls_problem
from acs_cli.secrets import mask_url, remember_secret
from acs_cli.settings import ResolvedSettings

from . import judge
from .report import Report, failed, failed_with, hostport, ms, passed, warned


def check_settings(report: Report, base_url: str | None, model: str | None, timeout: str | None, profile: str | None) -> ResolvedSettings | None:
    """The resolved settings, or None (the failure is in the report)."""
    from acs_cli.settings import DEFAULT_API_BASE, load_settings

    report.base_url = base_url or _env("ACS_API_BASE") or DEFAULT_API_BASE
    try:
        settings = load_settings(api_base=base_url, model=model, timeout=timeout, profile=profile)
    except ConfigError as exc:
        about_base = "ACS_API_BASE" in exc.message or "--base-url" in exc.message
        report.add(failed_with("base URL" if about_base else "settings", exc))
        return None
    report.base_url = settings.api_base
    if settings.api_key is not None:
        remember_secret(settings.api_key.get_secret_value())  # so that redact keeps it out of every line
    parts = urlsplit(settings.api_base)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    source = (getattr(settings, "sources", None) or {}).get("api_key", "env")
    if settings.api_key is None:
        key = "no key (ACS_API_KEY unset)"
    elif source == "env":
        key = "key from ACS_API_KEY (not shown)"
    else:
        key = f"key from {source} (not shown)"
    chosen = f"model {settings.model}" if settings.model else "no model configured"
    host = parts.hostname or ""
    detail = f"{mask_url(settings.api_base)}: {parts.scheme}, host {host}, port {port}; {chosen}; {key}; timeout {settings.timeout:g} s"
    if settings.api_key is not None and not https and not is_loopback(host):
        report.add(
            warned(
                "base URL",
                f"{detail}; the key goes over plain http:// to {host}, anyone on the path can read it",
                "use https:// for a server that is not on this machine",
            )
        )
    else:
        report.add(passed("base URL", detail))
    return settings


def check_dns(report: Report, host: str, port: int, where: str | None) -> list[tuple[Any, ...]] | None:
    start = time.monotonic()
    subject = host + (f" ({where})" if where else "")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        took = time.monotonic() - start
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        hint = "check the host name in ACS_BASE_URL (or --base-url)" if where is None else "check the proxy's host name in HTTP(S)_PROXY / ALL_PROXY"
        report.add(failed("DNS", f"cannot resolve {subject}: {reason} (after {ms(took)})", hint, ExitStatus.CONNECT, took))
        return None
    took = time.monotonic() - start
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    report.add(passed("DNS", f"{subject} resolved to {', '.join(addresses[:6])} in {ms(took)}", took))
    return infos


def check_tcp(report: Report, infos: list[tuple[Any, ...]], host: str, port: int, where: str | None) -> socket.socket | None:
    """A connected socket to the first resolved address that answers, or None."""
    failures: list[tuple[str, str]] = []  # (address, what happened)
    start = time.monotonic()
    via = f" ({where})" if where else ""
    for family, kind, proto, _name, address in infos:
        shown = hostport(str(address[0]), int(address[1]))
        sock = socket.socket(family, kind, proto)
        sock.settimeout(CONNECT_TIMEOUT)
        began = time.monotonic()
        try:
            sock.connect(address)
        except TimeoutError:
            sock.close()
            failures.append((shown, f"timed out after {CONNECT_TIMEOUT:g} s"))
            continue
        except OSError as exc:
            sock.close()
            failures.append((shown, str(exc.strerror or exc)))
            continue
        took = time.monotonic() - began
        tried = f" (after {_tried(failures)})" if failures else ""
        report.add(passed("TCP connect", f"connected to {shown}{via} in {ms(took)}{tried}", took))
        return sock
    report.add(_tcp_failure(failures, hostport(host, port), via, where, time.monotonic() - start))
    return None


def _tcp_failure(failures: list[tuple[str, str]], target: str, via: str, where: str | None, took: float) -> Any:
    if len({address for address, _ in failures}) == 1:
        reasons = "; ".join(dict.fromkeys(reason for _, reason in failures))  # one address: no need to name it again
        target = failures[0][0]
    else:
        reasons = _tried(failures) or "no address"
    if failures and all("timed out" in reason for _, reason in failures):
        hint = "check that the server is up and reachable from here (firewall, VPN, the port in ACS_BASE_URL)"
        return failed("TCP connect", f"connecting to {target}{via} timed out: {reasons}", hint, ExitStatus.TIMEOUT, took)
    if where is None:
        hint = "start the server, or point ACS_BASE_URL (or --base-url) at one"
    else:
        hint = "check the proxy in HTTP(S)_PROXY / ALL_PROXY, or bypass it with NO_PROXY"
    return failed("TCP connect", f"cannot connect to {target}{via}: {reasons}", hint, ExitStatus.CONNECT, took)


def check_tls(report: Report, sock: socket.socket, host: str) -> bool:
    """The TLS handshake on the connected socket, with acs's CA rules; whether it succeeded."""
    sock.settimeout(CONNECT_TIMEOUT)
    start = time.monotonic()
    try:
        tls = ssl_context().wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or exc.reason or str(exc)
        hint = "point SSL_CERT_FILE (or SSL_CERT_DIR) at the CA that signed the server's certificate, or fix the certificate (name, expiry, chain)"
        took = time.monotonic() - start
        report.add(failed("TLS", f"the certificate of {host} is not trusted: {reason} (CA bundle: {ca_bundle()})", hint, ExitStatus.CONNECT, took))
        return False
    except TimeoutError:
        hint = "check that the port speaks TLS: for a plain HTTP server use http:// in ACS_BASE_URL"
        took = time.monotonic() - start
        report.add(failed("TLS", f"the TLS handshake with {host} timed out after {CONNECT_TIMEOUT:g} s", hint, ExitStatus.TIMEOUT, took))
        return False
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        if reason.isupper():  # an OpenSSL reason code: WRONG_VERSION_NUMBER
            reason = reason.lower().replace("_", " ")
        if tls_problem(exc) == PLAIN_HTTP:  # the port answered, in plain http
            reason = f"the port does not speak TLS ({reason})"
            hint = "the server speaks plain http there: use http:// in ACS_BASE_URL (or --base-url)"
        else:
            hint = "check that the port speaks TLS (a plain HTTP server wants http:// in ACS_BASE_URL) and the server's TLS settings"
        took = time.monotonic() - start
        report.add(failed("TLS", f"the TLS handshake with {host} failed: {reason}", hint, ExitStatus.CONNECT, took))
        return False
    took = time.monotonic() - start
    try:
        cert = tls.getpeercert() or {}
        version = tls.version() or "TLS"
    finally:
        try:
            tls.close()
        except OSError:
            pass
    report.add(judge.judge_certificate(cert, version, took, time.time()))
    return True


def check_auth(report: Report, api: Any, has_key: bool) -> list[dict[str, Any]] | None:
    """The served models from GET /models, or None (the failure is in the report)."""
    start = time.monotonic()
    try:
        models = api.list_models()
    except AcsError as exc:
        report.add(failed_with("auth", exc, time.monotonic() - start))
        return None
    took = time.monotonic() - start
    key = "the key was accepted" if has_key else "no key sent (ACS_API_KEY unset) and none needed"
    report.add(passed("auth", f"GET /models answered 200 in {ms(took)}; {key}", took))
    return models


def _env(name: str) -> str | None:
    for key, value in os.environ.items():
        if key.upper() == name:
            return value
    return None


def _tried(failures: list[tuple[str, str]]) -> str:
    return "; ".join(f"{address}: {reason}" for address, reason in failures)
