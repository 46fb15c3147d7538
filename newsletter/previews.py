"""The email an article would send, as a page the writing room frames beside the web preview.

Anyone who may see the article in the admin (an editor, or the piece's own author)
may see its email: the preview shows the piece, not the readers. The links in it
point at a sample reader.

An email carries its CSS in ``style`` attributes, which the site's policy blocks.
This one response allows exactly the attribute values the email has (by their
SHA-256, CSP's ``'unsafe-hashes'``: no other inline style runs), runs no script at
all (``sandbox``) and may be framed only by the site's own pages.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html import unescape
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.clickjacking import xframe_options_sameorigin

from articles import permissions
from articles.models import Article
from newsletter.models import Campaign
from newsletter.sending.message import Recipient, render_campaign_email

SAMPLE_READER = Recipient(delivery_id=0, subscriber_id=0, email="reader@example.org")
_STYLE_ATTRIBUTE = re.compile(r"""\sstyle=(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


@xframe_options_sameorigin
def article_email_preview(request: HttpRequest, pk: int) -> HttpResponse:
    article = get_object_or_404(Article, pk=pk)
    if not permissions.can_view(request.user, article):
        raise PermissionDenied
    campaign = Campaign.objects.filter(article=article).first() or Campaign(article=article, pk=0)
    _, html = render_campaign_email(campaign).bodies(SAMPLE_READER)
    response = HttpResponse(html)
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    response._csp_replace = email_policy(html)  # type: ignore[attr-defined]  # what django-csp's csp_replace sets
    return response


def style_hashes(html: str) -> list[str]:
    """CSP sources for each distinct ``style`` attribute value in ``html``."""
    values = {unescape(double or single) for double, single in _STYLE_ATTRIBUTE.findall(html)}
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(value.encode()).digest()).decode()}'" for value in sorted(values)
    ]


def email_policy(html: str) -> dict[str, list[str]]:
    site = urlsplit(settings.SITE_URL)
    images = [f"{site.scheme}://{site.netloc}"] if site.netloc else []
    return {
        "style-src": ["'self'", "'unsafe-hashes'", *style_hashes(html)],
        "script-src": ["'none'"],
        "img-src": ["'self'", "data:", *images, *settings.CSP_IMG_SRC],
        "frame-ancestors": ["'self'"],
        "sandbox": ["allow-popups", "allow-popups-to-escape-sandbox"],
    }
