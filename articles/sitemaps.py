"""sitemap.xml: published articles, and the topics and authors that have some."""

from __future__ import annotations

from datetime import datetime

from django.contrib.sitemaps import Sitemap
from django.db.models import QuerySet
from django.urls import reverse

from articles import selectors
from articles.models import Article, Author, Topic


class ArticleSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.8

    def items(self) -> QuerySet[Article]:
        return selectors.published_articles().only("slug", "updated_at", "published_at")

    def lastmod(self, item: Article) -> datetime:
        return item.updated_at


class TopicSitemap(Sitemap):
    changefreq = "daily"
    priority = 0.6

    def items(self) -> QuerySet[Topic]:
        return selectors.topics_with_activity()

    def lastmod(self, item: Topic) -> datetime:
        return item.last_published  # type: ignore[attr-defined]


class AuthorSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.5

    def items(self) -> QuerySet[Author]:
        return selectors.authors_with_activity()

    def lastmod(self, item: Author) -> datetime:
        return item.last_published  # type: ignore[attr-defined]


class HomeSitemap(Sitemap):
    changefreq = "hourly"
    priority = 1.0

    def items(self) -> list[str]:
        return ["articles:home"]

    def location(self, item: str) -> str:
        return reverse(item)


SITEMAPS = {"home": HomeSitemap, "articles": ArticleSitemap, "topics": TopicSitemap, "authors": AuthorSitemap}
