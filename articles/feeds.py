"""RSS (/feed/) and Atom (/feed/atom/) of the latest published articles."""

from __future__ import annotations

import mimetypes
from datetime import datetime

from django.contrib.syndication.views import Feed
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed

from articles import selectors
from articles.models import Article

FEED_SIZE = 30


class LatestArticlesFeed(Feed):
    feed_type: type[Rss201rev2Feed | Atom1Feed] = Rss201rev2Feed
    title = "Euro Prospects"
    description = "The latest analysis and reporting from Euro Prospects."

    def link(self) -> str:
        return reverse("articles:home")

    def items(self) -> QuerySet[Article]:
        return selectors.published_articles().prefetch_related(*selectors.credits_prefetches())[:FEED_SIZE]

    def item_title(self, item: Article) -> str:
        return item.title

    def item_description(self, item: Article) -> str:
        return item.standfirst

    def item_link(self, item: Article) -> str:
        return item.get_absolute_url()

    def item_pubdate(self, item: Article) -> datetime | None:
        return item.published_at

    def item_updateddate(self, item: Article) -> datetime:
        return item.updated_at

    def item_author_name(self, item: Article) -> str:
        return ", ".join(link.author.name for link in item.article_authors.all())

    def item_author_link(self, item: Article) -> str | None:
        links = list(item.article_authors.all())
        return links[0].author.get_absolute_url() if links else None

    def item_categories(self, item: Article) -> list[str]:
        return [link.topic.name for link in item.article_topics.all()]

    def item_enclosure_url(self, item: Article) -> str | None:
        return item.hero_image.url if item.hero_image else None

    def item_enclosure_length(self, item: Article) -> int:
        try:
            return item.hero_image.size if item.hero_image else 0
        except OSError:
            return 0

    def item_enclosure_mime_type(self, item: Article) -> str:
        guessed = mimetypes.guess_type(item.hero_image.name)[0] if item.hero_image else None
        return guessed or "image/jpeg"


class LatestArticlesAtomFeed(LatestArticlesFeed):
    feed_type = Atom1Feed
    subtitle = LatestArticlesFeed.description
