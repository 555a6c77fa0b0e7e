"""The network rules doctor applies: loopback by address, the proxy the environment asks for, the
CAs acs trusts. Doctor must judge with the very rules acs's requests follow.

# to be replaced by acs_cli.netrules (the same names: is_loopback, proxy_address, ssl_context,
# ca_bundle), so the swap is one import in each doctor module that uses this one
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """Whether a URL's host is this machine, decided by address, never by spelling: 127.0.0.1,
    127.8.9.10, [::1] and ::ffff:127.0.0.1 are loopback; 127.0.0.1.evil.com is a name like any
    other and is not. The one name trusted is `localhost` (and `*.localhost`, RFC 6761), and only
    when every address it resolves to here is a loopback address."""
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


def proxy_address(url: str) -> tuple[str, int] | None:
    """The (host, port) of the proxy from the environment that requests to this URL go through
    (HTTP_PROXY / HTTPS_PROXY / ALL_PROXY, minus NO_PROXY, as urllib reads them), if any."""
    from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

    proxies = getproxies_environment()
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass_environment(parts.hostname or "", proxies):
        return None
    target = urlsplit(proxy if "://" in proxy else "http://" + proxy)
    try:
        port = target.port or (443 if target.scheme == "https" else 80)
    except ValueError:
        port = 80
    return target.hostname or "", port


def ssl_context() -> ssl.SSLContext:
    """The CAs acs trusts: SSL_CERT_FILE / SSL_CERT_DIR when set, else certifi's bundle, else the
    system's; the very context acs's transport builds for its requests, not a copy of its rules."""
    from acs_cli.transport import FastTransport

    return FastTransport()._context()


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
