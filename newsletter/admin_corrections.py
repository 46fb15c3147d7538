"""The article page's "Email this correction" step (newsletter/corrections.py).

The articles app never imports the newsletter, so the panel and its view belong to
``newsletter.admin.ArticleWithNewsletterAdmin``: a link per note on the article page,
a confirmation page naming how many readers it goes to, then the send.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from articles.models import Article, Correction
from newsletter import corrections
from newsletter.models import Campaign


def correction_urls(model_admin: ModelAdmin[Any]) -> list[URLPattern]:
    def view(request: HttpRequest, article_id: int, correction_id: int) -> HttpResponse:
        return send_correction_view(request, model_admin, article_id, correction_id)

    return [
        path(
            "<int:article_id>/corrections/<int:correction_id>/email/",
            model_admin.admin_site.admin_view(view),
            name="newsletter_correction_email",
        )
    ]


def correction_panel(article: Article) -> list[dict[str, Any]]:
    """Each note of the article with its campaign, if it was emailed."""
    campaigns = {c.correction_id: c for c in Campaign.objects.filter(correction__article=article)}
    return [{"note": note, "campaign": campaigns.get(note.pk)} for note in article.corrections.all()]


def send_correction_view(
    request: HttpRequest, model_admin: ModelAdmin[Any], article_id: int, correction_id: int
) -> HttpResponse:
    notes = Correction.objects.select_related("article")
    correction = get_object_or_404(notes, pk=correction_id, article_id=article_id)
    if not corrections.may_send(request.user):
        raise PermissionDenied
    article_url = reverse("admin:articles_article_change", args=[article_id])
    if request.method == "POST":
        try:
            campaign = corrections.send_correction(correction=correction, by=request.user)
        except corrections.NothingToSend as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(article_url)
        messages.success(request, f"The note goes to {campaign.recipients} reader(s) who received the piece.")
        return HttpResponseRedirect(reverse("admin:newsletter_campaign_progress", args=[campaign.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Email this note to the readers who received the piece",
        "correction": correction,
        "article": correction.article,
        "readers": corrections.readers_who_received(correction.article).count(),
        "campaign": Campaign.objects.filter(correction=correction).first(),
        "article_url": article_url,
    }
    return TemplateResponse(request, "admin/newsletter/correction_email_confirm.html", context)
