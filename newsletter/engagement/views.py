"""``/r/<token>/``: the first-party redirect of a tracked link (and the open pixel).

It answers from memory after the first fetch of a link in a process, writes nothing
to PostgreSQL and appends one entry to a Redis stream (``events.record``).
"""

from __future__ import annotations

import base64

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect

from newsletter.engagement import events
from newsletter.engagement.models import CampaignLink
from newsletter.engagement.tokens import BadClickToken, read_link, read_reader

# A transparent 1x1 GIF.
_PIXEL = base64.b64decode(b"R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
# Links never change once made: each process keeps the ones it has been asked for.
_links: dict[int, tuple[int, str, str]] = {}
_LINKS_KEPT = 50_000


def _link(link_id: int) -> tuple[int, str, str] | None:
    found = _links.get(link_id)
    if found is None:
        row = CampaignLink.objects.filter(pk=link_id).values_list("campaign_id", "kind", "url").first()
        if row is None:
            return None
        if len(_links) >= _LINKS_KEPT:
            _links.clear()
        found = _links[link_id] = row
    return found


def _refused(message: str, status: int = 400) -> HttpResponse:
    response = HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
    response.status_code = status
    response["Cache-Control"] = "no-store"
    return response


def tracked_link(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = _refused("Only GET and HEAD are allowed here.", 405)
        response["Allow"] = "GET, HEAD"
        return response
    try:
        link_id, reader, signature = read_link(token)
        link = _link(link_id)
        if link is None:
            return _refused("This link no longer leads anywhere.", 404)
        campaign_id, kind, url = link
        subscriber_id = read_reader(campaign_id, reader, signature)
    except BadClickToken as exc:
        return _refused(str(exc))
    events.record(
        link_id=link_id,
        subscriber_id=subscriber_id,
        head=request.method == "HEAD",
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    if kind == CampaignLink.Kind.OPEN:
        response = HttpResponse(_PIXEL, content_type="image/gif")
    else:
        response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
