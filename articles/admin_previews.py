"""The article admin's shared preview links: make one, revoke one (articles/previews.py).

The buttons sit in the article's change form (``formaction``), so the two views
read only their own fields from the posted form and leave the article as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from articles import permissions, previews
from articles.models import Article, PreviewLink

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin


def preview_link_urls(model_admin: ModelAdmin[Any]) -> list[URLPattern]:
    wrap = model_admin.admin_site.admin_view
    return [
        path("<int:article_id>/preview-links/new/", wrap(create_link), name="articles_article_preview_link_new"),
        path(
            "<int:article_id>/preview-links/<int:link_id>/revoke/",
            wrap(revoke_link),
            name="articles_article_preview_link_revoke",
        ),
    ]


def _article(request: HttpRequest, article_id: int) -> Article:
    article = get_object_or_404(Article, pk=article_id)
    if not permissions.can_view(request.user, article):
        raise Http404("No such article.")
    return article


def _back(article: Article) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:articles_article_change", args=[article.pk]) + "#shared-previews")


@require_POST
def create_link(request: HttpRequest, article_id: int) -> HttpResponse:
    article = _article(request, article_id)
    try:
        link_path = previews.create_preview_link(
            article=article, by=request.user, label=request.POST.get("_preview_label", "")
        )
    except PermissionDenied as error:
        messages.error(request, str(error))
        return _back(article)
    except ValidationError as error:
        messages.error(request, f"The link was not made: {' '.join(error.messages)}")
        return _back(article)
    url = settings.SITE_URL + link_path
    messages.success(
        request,
        format_html(
            "Preview link made, valid for {} days. Copy it now; it is not shown again: <code>{}</code>",
            settings.PREVIEW_LINK_DAYS,
            url,
        ),
    )
    return _back(article)


@require_POST
def revoke_link(request: HttpRequest, article_id: int, link_id: int) -> HttpResponse:
    article = _article(request, article_id)
    link = get_object_or_404(PreviewLink, pk=link_id, article=article)
    try:
        previews.revoke_preview_link(link=link, by=request.user)
    except PermissionDenied as error:
        messages.error(request, str(error))
        return _back(article)
    messages.success(request, f"The preview link “{link}” no longer works.")
    return _back(article)
