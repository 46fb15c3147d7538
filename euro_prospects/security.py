"""Small security helpers shared by every app: safe redirects and the client's address."""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def safe_next_url(request: HttpRequest, default: str, *, field: str = "next") -> str:
    """The ``next`` URL from POST or GET when it points at this site, else ``default``.

    Refuses other hosts, protocol-relative ``//evil.example`` and ``javascript:``
    URLs, and plain http:// targets when the request came in over HTTPS.
    """
    candidate = request.POST.get(field) or request.GET.get(field) or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def parse_proxy_networks(value: str) -> list[IPNetwork]:
    """``TRUSTED_PROXIES``: comma-separated addresses or CIDR ranges; ValueError names a bad entry."""
    networks = []
    for item in value.split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{item.strip()!r} is not an IP address or CIDR range") from None
    return networks


@lru_cache(maxsize=8)
def _trusted_networks(setting: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(parse_proxy_networks(",".join(setting)))


def _parse_address(value: str) -> IPAddress | None:
    """An address as a proxy writes it: bare, or with a port (``192.0.2.1:4711``, ``[2001:db8::1]:80``)."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_ip(request: HttpRequest) -> str | None:
    """The address of the client that sent ``request``, for rate limits, consent records and lockouts.

    The direct peer (``REMOTE_ADDR``) unless it is one of ``TRUSTED_PROXIES``; then
    ``X-Forwarded-For`` is read from the right, skipping the hops that are trusted
    proxies too, and the first address that is not is the client. Entries further
    left were written by the client itself and can be forged, so they are never
    used. Without ``X-Forwarded-For`` a trusted proxy's ``X-Real-IP`` is used.
    None when no valid address is known.
    """
    remote = _parse_address(str(request.META.get("REMOTE_ADDR") or ""))
    trusted = _trusted_networks(tuple(settings.TRUSTED_PROXIES))

    def is_trusted(address: IPAddress) -> bool:
        return any(address in network for network in trusted)

    if remote is None or not is_trusted(remote):
        return str(remote) if remote else None
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    if forwarded.strip():
        nearest = remote
        for hop in reversed(forwarded.split(",")):
            address = _parse_address(hop)
            if address is None:
                # A trusted proxy writes valid addresses: this one is garbage
                # from the client, so the last proxy that handled it is all we know.
                return str(nearest)
            if not is_trusted(address):
                return str(address)
            nearest = address
        return str(nearest)
    real_ip = _parse_address(str(request.META.get("HTTP_X_REAL_IP") or ""))
    return str(real_ip or remote)
