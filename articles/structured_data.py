"""schema.org NewsArticle for an article page, as a JSON-LD string safe inside <script>."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.safestring import SafeString, mark_safe

from articles.models import Article, SiteSettings

if TYPE_CHECKING:
    from articles.selectors import ArticleLinks, Person

# The same escapes as Django's json_script: the JSON cannot close the <script>.
_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def person(author: Person) -> dict[str, Any]:
    data: dict[str, Any] = {"@type": "Person", "name": author.name, "url": settings.SITE_URL + author.url}
    if author.role:
        data["jobTitle"] = author.role
    return data


def news_article_data(
    article: Article, *, links: ArticleLinks, site: SiteSettings, canonical_url: str
) -> dict[str, Any]:
    authors, topics, editor = links.authors, links.topics, links.editor
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "description": article.meta_description or article.standfirst,
        "url": canonical_url,
        "mainEntityOfPage": {"@type": "WebPage", "@id": canonical_url},
        "author": [person(author) for author in authors],
        "publisher": {"@type": "Organization", "name": site.site_name, "url": settings.SITE_URL + "/"},
        "timeRequired": f"PT{article.reading_minutes}M",
        "articleSection": [topic.name for topic in topics],
        "isAccessibleForFree": True,
    }
    if article.published_at:
        data["datePublished"] = article.published_at.isoformat()
    noted = [note.noted_at for note in links.corrections]
    data["dateModified"] = max(filter(None, [article.updated_at, article.published_at, *noted])).isoformat()
    corrections = [note for note in links.corrections if note.kind == "correction"]
    if corrections:
        data["correction"] = [
            {"@type": "CorrectionComment", "text": note.text, "datePublished": note.noted_at.isoformat()}
            for note in corrections
        ]
    if editor:
        data["editor"] = person(editor)
        # "Edited/Reviewed by": schema.org puts the reviewer on the page.
        data["mainEntityOfPage"]["reviewedBy"] = person(editor)
    if article.hero_image:
        image: dict[str, Any] = {"@type": "ImageObject", "url": settings.SITE_URL + article.hero_image.url}
        if article.hero_image_credit:
            image["creditText"] = article.hero_image_credit
        if article.hero_image_alt:
            image["caption"] = article.hero_image_alt
        data["image"] = image
    elif site.default_share_image:
        data["image"] = {"@type": "ImageObject", "url": settings.SITE_URL + site.default_share_image.url}
    return data


def news_article_json_ld(
    article: Article, *, links: ArticleLinks, site: SiteSettings, canonical_url: str
) -> SafeString:
    data = news_article_data(article, links=links, site=site, canonical_url=canonical_url)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES)
    return mark_safe(text)  # noqa: S308
