"""What the API shows of articles, topics and authors, and what staff may write."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from articles.models import Article, ArticleAuthor, ArticleTopic, Author, Topic
from euro_prospects.text import validate_single_line
from newsletter.models import Campaign, Subscriber


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


class RenditionsSerializer(serializers.Serializer[Article]):
    page = serializers.CharField(allow_null=True, help_text="Resized for the article page.")
    email = serializers.CharField(allow_null=True, help_text="Resized for the newsletter email.")


class HeroImageSerializer(serializers.Serializer[Article]):
    url = serializers.CharField(help_text="The original image.")
    renditions = RenditionsSerializer()
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
            "publish_at",
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
        request = self.context.get("request")
        return {
            "url": _absolute(request, article.hero_image.url),
            "renditions": {
                name: _absolute(request, rendition.url) if rendition else None
                for name, rendition in (("page", article.hero_image_page), ("email", article.hero_image_email))
            },
            "alt": article.hero_image_alt,
            "credit": article.hero_image_credit,
        }

    def get_disclaimer(self, article: Article) -> str:
        return article.disclaimer or self.context["default_disclaimer"]

    def get_url(self, article: Article) -> str:
        return _absolute(self.context.get("request"), article.get_absolute_url())

    def get_canonical_url(self, article: Article) -> str:
        return article.canonical_url or self.get_url(article)


class ArticleWriteSerializer(serializers.ModelSerializer[Article]):
    """What staff may write. The status changes only through the workflow actions.

    Which of these fields a caller may change, in which state, is decided by the
    article services (``articles.permissions.EDIT_RULES``), exactly as in the admin.
    """

    authors = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Author.objects.all(),
        many=True,
        required=False,
        help_text="Author slugs in byline order; the first is the byline. Leave out to sign with your own profile.",
    )
    topics = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Topic.objects.all(),
        many=True,
        required=False,
        help_text="Topic slugs in order; the first is the primary topic.",
    )
    editor = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Author.objects.all(),
        required=False,
        allow_null=True,
        help_text='The slug of the author shown as "Edited/Reviewed by".',
    )

    class Meta:
        model = Article
        fields = [
            "title",
            "slug",
            "standfirst",
            "body",
            "hero_image_alt",
            "hero_image_credit",
            "authors",
            "editor",
            "topics",
            "disclaimer",
            "canonical_url",
            "meta_title",
            "meta_description",
            "is_featured",
            "send_to_subscribers",
            "publish_at",
        ]
        extra_kwargs = {
            "publish_at": {"help_text": "Editors: when a scheduled article goes live (see the schedule action)."},
            "slug": {"required": False, "help_text": "Made from the title when left out."},
            "body": {"help_text": "HTML; anything outside the allowed tags is removed when it is stored."},
        }

    def _no_repeats(self, items: list[Any], what: str) -> list[Any]:
        if len({item.pk for item in items}) != len(items):
            raise serializers.ValidationError(f"Name each {what} once.")
        return items

    def validate_authors(self, authors: list[Author]) -> list[Author]:
        return self._no_repeats(authors, "author")

    def validate_topics(self, topics: list[Topic]) -> list[Topic]:
        return self._no_repeats(topics, "topic")


class ScheduleSerializer(serializers.Serializer[Any]):
    publish_at = serializers.DateTimeField(help_text="When the article goes live, e.g. 2026-03-01T09:00:00+01:00.")


class SubscribeSerializer(serializers.Serializer[Any]):
    """The sign-up form's fields; the form itself then checks them the same way it does on the site."""

    email = serializers.CharField(max_length=320)
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, validators=[validate_single_line])
    topics = serializers.ListField(
        child=serializers.CharField(max_length=80),
        required=False,
        help_text="Topic slugs to receive; leave out (or empty) for every topic.",
    )
    cadence = serializers.ChoiceField(
        choices=Subscriber.Cadence.choices,
        required=False,
        help_text="immediate (every piece as published, the default), daily or weekly (a digest).",
    )
    website = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Leave this out: people never fill it in."
    )


class MessageSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()


class CampaignArticleSerializer(serializers.Serializer[Article]):
    id = serializers.IntegerField()
    title = serializers.CharField()
    slug = serializers.CharField()


class CampaignSerializer(serializers.ModelSerializer[Campaign]):
    """A campaign and how far its sending has come (counts of its deliveries by state)."""

    article = CampaignArticleSerializer(read_only=True)
    total = serializers.IntegerField(read_only=True, help_text="Deliveries in the ledger.")
    sent = serializers.IntegerField(read_only=True, help_text="Accepted by the mail server or provider.")
    pending = serializers.IntegerField(read_only=True, help_text="Waiting to be sent, or being sent now.")
    retrying = serializers.IntegerField(read_only=True, help_text="Failed for now; tried again later.")
    failed = serializers.IntegerField(read_only=True, help_text="Given up: a permanent failure.")
    skipped = serializers.IntegerField(read_only=True, help_text="Not sent: the reader unsubscribed or bounced.")

    class Meta:
        model = Campaign
        fields = [
            "id",
            "article",
            "digest",
            "period_start",
            "period_end",
            "subject",
            "status",
            "recipients",
            "total",
            "sent",
            "pending",
            "retrying",
            "failed",
            "skipped",
            "created_at",
            "planned_at",
            "finished_at",
            "last_activity_at",
            "paused_at",
            "paused_reason",
        ]
        read_only_fields = fields


class CampaignLinkStatsSerializer(serializers.Serializer[dict[str, Any]]):
    url = serializers.CharField(help_text="Where the link leads.")
    human_clicks = serializers.IntegerField(help_text="Readers who clicked it (each counted once).")
    scanner_hits = serializers.IntegerField(help_text="Fetches by mail-security scanners and other agents.")


class CampaignStatsSerializer(serializers.Serializer[dict[str, Any]]):
    """What happened after sending (docs/engagement.md): the campaign page's figures."""

    campaign = serializers.IntegerField(help_text="The campaign's id.")
    title = serializers.CharField()
    delivered = serializers.IntegerField(help_text="Messages accepted by the mail server or provider.")
    human_clicks = serializers.IntegerField(help_text="Human clicks, once per reader and link.")
    clicking_readers = serializers.IntegerField(help_text="Readers who clicked at least one link.")
    click_rate = serializers.FloatField(allow_null=True, help_text="clicking_readers / delivered; null if none.")
    repeat_clicks = serializers.IntegerField(help_text="Further human clicks on a link a reader had clicked.")
    scanner_hits = serializers.IntegerField(help_text="Fetches not counted as clicks (scanners, HEAD, bursts).")
    unsubscribes = serializers.IntegerField(help_text="Unsubscribes attributed to this campaign.")
    bounces = serializers.IntegerField(help_text="Addresses suppressed for bouncing, attributed to this campaign.")
    complaints = serializers.IntegerField(help_text="Spam complaints attributed to this campaign.")
    web_visits = serializers.IntegerField(help_text="Arrivals on an article page through a link of the email.")
    opens = serializers.IntegerField(
        allow_null=True,
        help_text="Only with NEWSLETTER_TRACK_OPENS, else null: a lower bound inflated by Apple Mail Privacy "
        "Protection, not a measure of reading.",
    )
    top_links = CampaignLinkStatsSerializer(many=True)
    clicks_by_hour = serializers.ListField(
        child=serializers.IntegerField(), help_text="Human clicks in each of the first 72 hours after sending."
    )
