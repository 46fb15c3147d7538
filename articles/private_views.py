"""Pages reached by a private link, never cached and never indexed: a shared preview of
an unpublished piece (articles/previews.py) and a contributor's status page
(articles/contributors.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from articles import contributors, previews, selectors
from articles.views import article_page_context

ENDED = {
    "revoked": "The editors have withdrawn this preview link.",
    "expired": "This preview link has expired.",
}


def private(response: HttpResponse) -> HttpResponse:
    """No cache keeps it, no search engine indexes it, no link on it passes the token on."""
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_safe
def shared_preview(request: HttpRequest, token: str) -> HttpResponse:
    """The piece's page as it stands now, marked as a draft, for whoever holds the link."""
    try:
        link = previews.link_for_token(token)
    except previews.LinkNotValid:
        page = {"heading": "This preview link does not work", "reason": "Check that you copied the whole address."}
        return private(render(request, "articles/preview_ended.html", page, status=404))
    except previews.LinkEnded as ended:
        page = {"heading": "This preview is no longer available", "reason": ENDED[ended.reason]}
        return private(render(request, "articles/preview_ended.html", page, status=410))
    if request.method == "GET":
        previews.record_open(link=link, user_agent=request.headers.get("User-Agent", ""))
    article = link.article
    context = article_page_context(article, selectors.article_links(article)) | {
        "is_preview": True,
        "shared_preview": link,
    }
    return private(render(request, "articles/article_detail.html", context))


@require_safe
def contributor_status(request: HttpRequest, token: str) -> HttpResponse:
    """Where a piece sent through /write/ stands, and what the editors said about it."""
    found = contributors.article_for_status_token(token)
    if found is None:
        page = {"heading": "This status link does not work", "reason": "Check that you copied the whole address."}
        return private(render(request, "articles/preview_ended.html", page, status=404))
    article, author = found
    context = {"status": contributors.status_for(article), "article": article, "author": author}
    context["just_sent"] = "sent" in request.GET
    return private(render(request, "articles/contributor_status.html", context))
