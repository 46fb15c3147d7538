"""The REST API under /api/v1/: thin views over QuerySets (reads) and services (writes)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from api.serializers import ArticleSerializer, AuthorSerializer, TopicSerializer
from articles.models import Article, ArticleAuthor, ArticleTopic, Author, SiteSettings, Topic

# Path ids longer than this cannot be a row (and would overflow the database's bigint).
ID_PATTERN = r"[0-9]{1,18}"
SLUG_PATTERN = r"[-a-zA-Z0-9_]+"


class ArticleFilter(filters.FilterSet):
    topic = filters.CharFilter(field_name="topics__slug", help_text="A topic's slug.")
    author = filters.CharFilter(field_name="authors__slug", help_text="An author's slug.")
    published_after = filters.DateFilter(
        field_name="published_at__date", lookup_expr="gte", help_text="Published on or after this date (YYYY-MM-DD)."
    )
    published_before = filters.DateFilter(
        field_name="published_at__date", lookup_expr="lte", help_text="Published on or before this date (YYYY-MM-DD)."
    )

    class Meta:
        model = Article
        fields = ["topic", "author", "published_after", "published_before"]


def _with_anatomy(articles: QuerySet[Article]) -> QuerySet[Article]:
    """Everything the serializer shows, in a fixed number of queries whatever the page size."""
    return articles.select_related("editor").prefetch_related(
        Prefetch("article_authors", queryset=ArticleAuthor.objects.select_related("author").order_by("position")),
        Prefetch("article_topics", queryset=ArticleTopic.objects.select_related("topic").order_by("position")),
    )


class ArticleViewSet(viewsets.ReadOnlyModelViewSet[Article]):
    """Published articles, newest first. Anyone may read them."""

    serializer_class = ArticleSerializer
    filterset_class = ArticleFilter
    lookup_value_regex = ID_PATTERN
    permission_classes = [AllowAny]

    def get_queryset(self) -> QuerySet[Article]:
        return _with_anatomy(Article.objects.published())

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["default_disclaimer"] = SiteSettings.load().default_disclaimer
        return context

    @extend_schema(responses=ArticleSerializer)
    @action(detail=False, url_path=f"by-slug/(?P<slug>{SLUG_PATTERN})", filterset_class=None, pagination_class=None)
    def by_slug(self, request: Request, slug: str) -> Response:
        """An article by its slug, the last part of its address on the site."""
        article = self.get_queryset().filter(slug=slug).first()
        if article is None:
            raise exceptions.NotFound("No published article has this slug.")
        return Response(self.get_serializer(article).data)


class TopicViewSet(viewsets.ReadOnlyModelViewSet[Topic]):
    queryset = Topic.objects.all()
    serializer_class = TopicSerializer
    lookup_field = "slug"
    lookup_value_regex = SLUG_PATTERN
    permission_classes = [AllowAny]


class AuthorViewSet(viewsets.ReadOnlyModelViewSet[Author]):
    queryset = Author.objects.all()
    serializer_class = AuthorSerializer
    lookup_field = "slug"
    lookup_value_regex = SLUG_PATTERN
    permission_classes = [AllowAny]


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@permission_classes([AllowAny])
def not_found(request: Request, *args: object, **kwargs: object) -> Response:
    """Unknown addresses under /api/ answer JSON, not the site's HTML 404 page."""
    raise exceptions.NotFound("There is nothing at this address. The API starts at /api/v1/.")
