"""Small security helpers shared by every app: safe redirects and the client's address."""

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


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


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or behind our trusted proxy the last
    X-Forwarded-For entry (the one nginx appended; earlier ones are the client's
    own claims and can be forged)."""
    if settings.TRUST_X_FORWARDED_PROTO:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    remote: str | None = request.META.get("REMOTE_ADDR")
    return remote
