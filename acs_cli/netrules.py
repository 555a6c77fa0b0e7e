"""Network rules, written once for the API client, the engine and doctor: what counts as loopback,
which proxy the environment asks for, which CAs are trusted, and when a request is worth retrying.

Loopback is decided by address, never by how a host is spelled: `127.0.0.1`, `127.8.9.10`, `::1`
and `::ffff:127.0.0.1` are loopback; `127.0.0.1.evil.com` is a name like any other and is not.
The one name trusted is `localhost` (and `*.localhost`, RFC 6761), and only when every address
it resolves to here is a loopback address: a hosts file that points it elsewhere is believed.
"""

from __future__ import annotations

import email.utils
import functools
import ipaddress
import math
import os
import random
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from acs_cli.errors import ConfigError

CONNECT_TIMEOUT = 10.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_AFTER_CAP = 60.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


# --------------------------------------------------------------------------- loopback


def is_loopback(host: str) -> bool:
    """Whether a URL's host is this machine by address (see the module's docstring)."""
    host = host.strip().strip("[]").split("%", 1)[0].rstrip(".").lower()
    address = _address(host)
    if address is not None:
        return _loopback_address(address)
    if host == "localhost" or host.endswith(".localhost"):
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return False
        addresses = [_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        return bool(addresses) and all(a is not None and _loopback_address(a) for a in addresses)
    return False


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _loopback_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


# --------------------------------------------------------------------------- proxies


def proxy_url(url: str) -> str | None:
    """The proxy the environment asks for this URL (HTTP_PROXY / HTTPS_PROXY / ALL_PROXY, minus
    NO_PROXY, as urllib reads them, lower case first), or None to connect directly."""
    from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

    proxies = getproxies_environment()
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass_environment(parts.hostname or "", proxies):
        return None
    return proxy if "://" in proxy else "http://" + proxy


def proxy_address(url: str) -> tuple[str, int] | None:
    """The (host, port) of the proxy that requests to this URL go through, if any."""
    proxy = proxy_url(url)
    if proxy is None:
        return None
    target = urlsplit(proxy)
    try:
        port = target.port or (443 if target.scheme == "https" else 80)
    except ValueError:
        port = 80
    return target.hostname or "", port


def shown_proxy(proxy: str) -> str:
    """A proxy URL fit for a message: scheme, host and port, never its credentials."""
    parts = urlsplit(proxy)
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}"


def check_proxy(proxy: str) -> None:
    """Refuse, as a configuration error, a proxy acs cannot use (exit 3, never a traceback)."""
    scheme = urlsplit(proxy).scheme.lower()
    where = "HTTPS_PROXY / HTTP_PROXY / ALL_PROXY"
    if scheme not in PROXY_SCHEMES:
        raise ConfigError(
            f"the proxy {shown_proxy(proxy)} from the environment has an unsupported scheme {scheme!r}",
            f"use an http://, https:// or socks5:// proxy in {where}, or bypass it with NO_PROXY",
        )
    if scheme.startswith("socks"):
        try:
            import socksio  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"the proxy {shown_proxy(proxy)} is a SOCKS proxy, which needs the socksio package",
                "install it (pip install 'httpx[socks]'), or use an http:// proxy, or bypass it with NO_PROXY",
            ) from None


# --------------------------------------------------------------------------- TLS


def ssl_context() -> ssl.SSLContext:
    """The CAs acs trusts: SSL_CERT_FILE / SSL_CERT_DIR when set, else certifi's bundle, else
    the system's (one context per setting: building one reads the whole bundle)."""
    return _context(os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)


@functools.lru_cache(maxsize=4)
def _context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    if cafile is None and capath is None:
        try:
            import certifi

            cafile = certifi.where()
        except ImportError:
            pass
    return ssl.create_default_context(cafile=cafile, capath=capath)


def ca_bundle() -> str:
    """Which CAs `ssl_context` trusts, in words for a message."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile or capath:
        return ", ".join(x for x in (f"SSL_CERT_FILE={cafile}" if cafile else "", f"SSL_CERT_DIR={capath}" if capath else "") if x)
    try:
        import certifi  # noqa: F401

        return "certifi"
    except ImportError:
        return "the system's"


# --------------------------------------------------------------------------- what failed
# A connection failure read by its cause: a name that does not resolve, or TLS (a port that
# answers in plain http, a certificate not trusted). Neither is worth a retry.

PLAIN_HTTP = "plain http"
CERTIFICATE = "certificate"
OTHER_TLS = "tls"
# OpenSSL's reasons when the first bytes from the port are not a TLS record: an HTTP answer
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL", "HTTP_REQUEST")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it was raised from or during (httpx wraps httpcore's, which wraps
    the socket's), a few deep."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        yield current
        current = current.__cause__ or current.__context__
        seen += 1


def dns_failure(exc: BaseException) -> bool:
    """The host name did not resolve (getaddrinfo failed)."""
    for e in _chain(exc):
        if isinstance(e, socket.gaierror):
            return True
    text = str(exc)
    return any(s in text for s in ("Name or service not known", "nodename nor servname", "name resolution", "No address associated with hostname"))


def tls_problem(exc: BaseException) -> str | None:
    """PLAIN_HTTP (the port answered, but not in TLS), CERTIFICATE (the server's certificate is
    not trusted), OTHER_TLS, or None when the failure is not TLS's."""
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            return CERTIFICATE
        if isinstance(e, ssl.SSLError):
            return PLAIN_HTTP if getattr(e, "reason", None) in _NOT_TLS else OTHER_TLS
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return CERTIFICATE
    if any(f"[SSL: {r}]" in text for r in _NOT_TLS):
        return PLAIN_HTTP
    return OTHER_TLS if "[SSL" in text else None


def reason(exc: BaseException) -> str:
    """What happened, in the words of the error beneath: `Connection refused`, `wrong version
    number`, `certificate verify failed: self-signed certificate`."""
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError) and e.verify_message:
            return f"certificate verify failed: {e.verify_message}"
    text = str(exc) or type(exc).__name__
    match = re.search(r"\[Errno -?\d+\] ([^\]'\"]+)", text) or re.search(r"\[SSL(?:: \w+)?\] ([^(]+)", text)
    if match:
        return match.group(1).strip()
    return text.strip().rstrip(".")


# --------------------------------------------------------------------------- retry policy
# Retries happen only before the first byte of a body (a later retry would repeat output); the
# sync client and the schedulers on the engine share these rules.


def retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES


def retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After value (seconds or an HTTP date), capped; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - now()
    if math.isnan(seconds):
        return None
    return max(0.0, min(RETRY_AFTER_CAP, seconds))


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Exponential with jitter: 0.5 s, 1 s, 2 s ... capped at 8 s, times a factor in [0.5, 1)."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)) * (0.5 + rand() / 2)
