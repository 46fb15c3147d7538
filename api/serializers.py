"""What the API shows of articles, topics and authors, and what staff may write."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from articles.models import Article, ArticleAuthor, ArticleTopic, Author, Topic


def _absolute(request: HttpRequest | None, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


class TopicSerializer(serializers.ModelSerializer[Topic]):
    url = serializers.SerializerMethodField(help_text="The topic's page on the site.")

    class Meta:
        model = Topic
        fields = ["id", "name", "slug", "description", "url"]

    def get_url(self, topic: Topic) -> str:
        return _absolute(self.context.get("request"), topic.get_absolute_url())


class AuthorSerializer(serializers.ModelSerializer[Author]):
    url = serializers.SerializerMethodField(help_text="The author's page on the site.")
    photo_url = serializers.SerializerMethodField(help_text="The author's photo, or null.")

    class Meta:
        model = Author
        fields = ["id", "name", "slug", "role", "bio", "photo_url", "url"]

    def get_url(self, author: Author) -> str:
        return _absolute(self.context.get("request"), author.get_absolute_url())

    def get_photo_url(self, author: Author) -> str | None:
        return _absolute(self.context.get("request"), author.photo.url) if author.photo else None


class BylineSerializer(serializers.Serializer[ArticleAuthor]):
    """One author of an article, in byline order (position 0 is the byline)."""

    id = serializers.IntegerField(source="author.id")
    name = serializers.CharField(source="author.name")
    slug = serializers.CharField(source="author.slug")
    role = serializers.CharField(source="author.role", help_text='e.g. "Ukraine Correspondent".')
    position = serializers.IntegerField()


class ArticleTopicSerializer(serializers.Serializer[ArticleTopic]):
    id = serializers.IntegerField(source="topic.id")
    name = serializers.CharField(source="topic.name")
    slug = serializers.CharField(source="topic.slug")
    position = serializers.IntegerField(help_text="0 is the primary topic.")


class EditorSerializer(serializers.Serializer[Author]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    role = serializers.CharField()


class HeroImageSerializer(serializers.Serializer[Article]):
    url = serializers.CharField(help_text="The original image.")
    alt = serializers.CharField()
    credit = serializers.CharField(help_text='Shown as "Image credit: …".')


class ArticleSerializer(serializers.ModelSerializer[Article]):
    """Every part of an article's anatomy, top to bottom as the page shows it."""

    topics = ArticleTopicSerializer(source="article_topics", many=True, read_only=True)
    topic_line = serializers.SerializerMethodField(help_text='The topics as the page shows them: "Topic | Topic".')
    authors = BylineSerializer(source="article_authors", many=True, read_only=True)
    editor = EditorSerializer(read_only=True, allow_null=True, help_text='Shown as "Edited/Reviewed by".')
    hero_image = serializers.SerializerMethodField()
    disclaimer = serializers.SerializerMethodField(help_text="The article's own, or the site's default.")
    url = serializers.SerializerMethodField(help_text="The article's page on the site.")
    canonical_url = serializers.SerializerMethodField(
        help_text="Where the piece first appeared, or its page on this site."
    )

    class Meta:
        model = Article
        fields = [
            "id",
            "slug",
            "status",
            "topics",
            "topic_line",
            "reading_minutes",
            "title",
            "standfirst",
            "hero_image",
            "authors",
            "editor",
            "published_at",
            "updated_at",
            "body",
            "disclaimer",
            "url",
            "canonical_url",
            "meta_title",
            "meta_description",
        ]
        read_only_fields = fields

    def get_topic_line(self, article: Article) -> str:
        return " | ".join(link.topic.name for link in article.article_topics.all())

    @extend_schema_field(HeroImageSerializer(allow_null=True))
    def get_hero_image(self, article: Article) -> dict[str, Any] | None:
        if not article.hero_image:
            return None
        return {
            "url": _absolute(self.context.get("request"), article.hero_image.url),
            "alt": article.hero_image_alt,
            "credit": article.hero_image_credit,
        }

    def get_disclaimer(self, article: Article) -> str:
        return article.disclaimer or self.context["default_disclaimer"]

    def get_url(self, article: Article) -> str:
        return _absolute(self.context.get("request"), article.get_absolute_url())

    def get_canonical_url(self, article: Article) -> str:
        return article.canonical_url or self.get_url(article)
