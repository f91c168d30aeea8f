"""Checks on webhook URLs against server-side request forgery.

A target must be ``https`` (``http`` where the operator allows it) and every address its host
resolves to must be a public one: no loopback, private, link-local (which includes cloud
metadata services at 169.254.169.254), shared, multicast or reserved address. The check runs
when a job is created and again before each delivery, and the delivery connects to the
address that was checked, so a DNS change between the two cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_URL_CHARS = 2048
RESOLVE_TIMEOUT_SECONDS = 5.0


class WebhookTargetError(Exception):
    """The URL may not receive webhooks; the message gives the reason."""


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    host: str
    port: int
    address: str
    """The checked address that the delivery connects to."""

    def request_url(self) -> str:
        """Return the URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        address = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{address}:{self.port}"
        return parts._replace(netloc=netloc).geturl()

    def host_header(self) -> str:
        """Return the ``Host`` header value: the host and port as the URL wrote them."""
        netloc = urlsplit(self.url).netloc
        return netloc.rsplit("@", 1)[-1]


def check_url_form(url: str, *, allow_http: bool) -> SplitResult:
    """Check the URL's shape; raise ``WebhookTargetError`` naming what to change."""
    if len(url) > MAX_URL_CHARS:
        raise WebhookTargetError(f"must be at most {MAX_URL_CHARS} characters")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise WebhookTargetError("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise WebhookTargetError(f"is not a valid URL ({err})") from err
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise WebhookTargetError(f"must be an {' or '.join(schemes)} URL")
    if not parts.hostname:
        raise WebhookTargetError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise WebhookTargetError("must not contain a user name or password")
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as err:
        raise WebhookTargetError("has an invalid port") from err
    return parts


# IPv6 prefixes whose addresses carry an IPv4 address that a gateway may forward to.
_NAT64_PREFIXES = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # Python counts NAT64 and 6to4 addresses as global even when the IPv4 address inside
        # them is loopback or private, so judge the IPv4 address instead.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and any(ip in prefix for prefix in _NAT64_PREFIXES):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.teredo is not None:
            return False
        if embedded is not None:
            ip = embedded
    if any(ip in network for network in _SPECIAL_NETWORKS):
        return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


# IANA's special-purpose ranges (RFC 6890 and its updates), listed because Python 3.11's
# is_global counts some of them, such as 192.0.0.0/24 and 5f00::/16, as global.
_SPECIAL_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
        "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20",
        "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip


async def resolve_target(url: str, *, allow_http: bool, allow_private: bool) -> WebhookTarget:
    """Check the URL and resolve its host; raise ``WebhookTargetError`` if it may not be used."""
    parts = check_url_form(url, allow_http=allow_http)
    host = parts.hostname
    assert host is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as err:
        raise WebhookTargetError(f"host '{host}' does not resolve ({err})") from err
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise WebhookTargetError(f"host '{host}' does not resolve")
    if not allow_private:
        blocked = [address for address in addresses if not _is_public(address)]
        if blocked:
            raise WebhookTargetError(
                f"host '{host}' resolves to {', '.join(blocked)}, which is not a public "
                "address; webhooks go only to public addresses"
            )
    return WebhookTarget(url=url, host=host, port=port, address=addresses[0])
