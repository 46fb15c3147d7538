"""Link rewriting: each link of a campaign's email becomes a first-party tracked link.

``rewrite_links`` runs once per campaign render (article and digest emails alike): it
stores each distinct URL once in the campaign's link table and puts
``SITE_URL/r/<link half>.READER_MARK/`` in its place. A reader's copy fills in
``READER_MARK`` with ``reader_part`` by substitution, like the unsubscribe link.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import Resolver404, resolve

from newsletter.engagement.models import CampaignLink
from newsletter.engagement.tokens import link_part, reader_part

__all__ = ["READER_MARK", "reader_part", "rewrite_links"]

READER_MARK = "@@READER@@"
_HREF = re.compile(r'(<a\b[^>]*?\shref=")(https?://[^"]+)(")', re.IGNORECASE)
_TEXT_URL = re.compile(r"https?://[^\s<>\"]+")
_TRAILING = ".,;:!?)]'"
_PIXEL = (
    '<img src="{}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">'
)


def rewrite_links(*, campaign_id: int, html: str, text: str) -> tuple[str, str]:
    """The email's parts with every http(s) link tracked (and the open pixel with
    ``NEWSLETTER_TRACK_OPENS``). A preview of an unsaved campaign (id 0) is left alone."""
    if not campaign_id or not settings.NEWSLETTER_CLICK_TRACKING:
        return html, text
    html_urls = [html_lib.unescape(match[2]) for match in _HREF.finditer(html)]
    text_urls = [_trimmed(match[0]) for match in _TEXT_URL.finditer(text)]
    ids = link_ids(campaign_id, [*html_urls, *text_urls])

    def tracked(url: str) -> str:
        return f"{settings.SITE_URL}/r/{link_part(ids[url])}.{READER_MARK}/"

    html = _HREF.sub(lambda m: f"{m[1]}{tracked(html_lib.unescape(m[2]))}{m[3]}", html)
    text = _TEXT_URL.sub(lambda m: tracked(_trimmed(m[0])) + m[0][len(_trimmed(m[0])) :], text)
    if settings.NEWSLETTER_TRACK_OPENS:
        pixel = _PIXEL.format(tracked(""))
        html = html.replace("</body>", f"{pixel}</body>", 1) if "</body>" in html else html + pixel
    return html, text


def _trimmed(url: str) -> str:
    return url.rstrip(_TRAILING)


def _hash(kind: str, url: str) -> str:
    return hashlib.sha256(f"{kind}:{url}".encode()).hexdigest()


def link_ids(campaign_id: int, urls: list[str]) -> dict[str, int]:
    """The link-table id of each URL (and of the open pixel, under ""), rows made once:
    several workers may render the same campaign at the same time."""
    wanted = {url: _hash(CampaignLink.Kind.LINK, url) for url in dict.fromkeys(urls)}
    wanted[""] = _hash(CampaignLink.Kind.OPEN, "")
    known = dict(
        CampaignLink.objects.filter(campaign_id=campaign_id, url_hash__in=wanted.values()).values_list("url_hash", "id")
    )
    missing = [url for url, digest in wanted.items() if digest not in known]
    if missing:
        CampaignLink.objects.bulk_create(
            [
                CampaignLink(
                    campaign_id=campaign_id,
                    kind=CampaignLink.Kind.LINK if url else CampaignLink.Kind.OPEN,
                    url=url,
                    url_hash=wanted[url],
                    article_id=article_on_this_site(url) if url else None,
                )
                for url in missing
            ],
            ignore_conflicts=True,
        )
        known = dict(
            CampaignLink.objects.filter(campaign_id=campaign_id, url_hash__in=wanted.values()).values_list(
                "url_hash", "id"
            )
        )
    return {url: known[digest] for url, digest in wanted.items()}


def article_on_this_site(url: str) -> int | None:
    """The id of the published article a URL shows on this site, if it shows one."""
    from articles.models import Article

    site, target = urlsplit(settings.SITE_URL), urlsplit(url)
    if (target.scheme, target.netloc) != (site.scheme, site.netloc):
        return None
    try:
        match = resolve(target.path)
    except Resolver404:
        return None
    if match.view_name != "articles:detail":
        return None
    return Article.objects.filter(slug=match.kwargs.get("slug")).values_list("pk", flat=True).first()
