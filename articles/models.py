from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from articles.html import opening_text, reading_minutes, sanitise_html
from articles.images import hero_image_help_text, validate_hero_image
from articles.links import slug_url
from euro_prospects.images import validate_image_upload
from euro_prospects.text import validate_single_line

if TYPE_CHECKING:
    from django.db.models.fields.related_descriptors import RelatedManager


class SiteSettings(models.Model):
    """The one row of settings editors change in the admin."""

    site_name = models.CharField(max_length=100, default="Euro Prospects", validators=[validate_single_line])
    default_disclaimer = models.TextField(
        blank=True,
        default=(
            "The views expressed in this article are the author's own and do not necessarily "
            "reflect the editorial position of Euro Prospects."
        ),
        help_text="Shown under every article that has no disclaimer of its own.",
    )
    newsletter_sender_name = models.CharField(
        max_length=100,
        default="Euro Prospects",
        validators=[validate_single_line],
        help_text="The From name of every newsletter email.",
    )
    newsletter_sender_email = models.EmailField(
        default="newsletter@localhost", help_text="The From address of every newsletter email."
    )
    digest_hour = models.PositiveSmallIntegerField(
        default=7,
        validators=[MaxValueValidator(23)],
        help_text="Hour (0 to 23, in the site's time zone) at which the daily and weekly digests go out.",
    )
    digest_weekday = models.PositiveSmallIntegerField(
        default=0,
        choices=[
            (0, "Monday"),
            (1, "Tuesday"),
            (2, "Wednesday"),
            (3, "Thursday"),
            (4, "Friday"),
            (5, "Saturday"),
            (6, "Sunday"),
        ],
        help_text="Day the weekly digest goes out.",
    )
    daily_digest_intro = models.TextField(
        blank=True, help_text="Introduction of the next daily digest (plain text); used once, then cleared."
    )
    weekly_digest_intro = models.TextField(
        blank=True, help_text="Introduction of the next weekly digest (plain text); used once, then cleared."
    )
    default_share_image = models.ImageField(
        upload_to="site/",
        blank=True,
        validators=[validate_hero_image],
        help_text="Shown when a piece without a hero image is shared (Open Graph, JSON-LD). At least 1200 x 630.",
    )
    default_share_image_alt = models.CharField(
        max_length=250, blank=True, validators=[validate_single_line], help_text="Describes the default share image."
    )

    class Meta:
        verbose_name = "site settings"
        verbose_name_plural = "site settings"

    def __str__(self) -> str:
        return "Site settings"

    def save(self, *args: object, **kwargs: object) -> None:
        self.pk = 1
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def load(cls) -> SiteSettings:
        # Every public page reads this row: in SQL, as the ORM's get_or_create
        # costs several times the query itself. The row is made on first use.
        found = list(cls.objects.raw("SELECT * FROM articles_sitesettings WHERE id = 1"))
        if found:
            return found[0]
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class Topic(models.Model):
    name = models.CharField(max_length=80, unique=True, validators=[validate_single_line])
    slug = models.SlugField(max_length=80, unique=True, validators=[validate_single_line])
    description = models.TextField(blank=True, help_text="One or two sentences shown on the topic page.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return slug_url("articles:topic", self.slug)


class Author(models.Model):
    name = models.CharField(max_length=120, validators=[validate_single_line])
    slug = models.SlugField(max_length=120, unique=True, validators=[validate_single_line])
    role = models.CharField(
        max_length=120,
        blank=True,
        validators=[validate_single_line],
        help_text='Shown beside the byline, e.g. "Ukraine Correspondent".',
    )
    bio = models.TextField(blank=True, help_text="A short biography shown on the author page.")
    photo = models.ImageField(upload_to="authors/", blank=True, validators=[validate_image_upload])
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="author_profile",
        help_text="The staff account of this author, if they write in the admin.",
    )
    email = models.EmailField(blank=True, db_index=True, help_text="Private: never shown on the site.")
    same_email_as = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=(
            "Set when a piece sent through /write/ gave this existing author's address: nobody proved the "
            "address is theirs, so the piece stays on this new record until an editor merges the two "
            "(the “Merge into the author with the same address” action) or clears this field."
        ),
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return slug_url("articles:author", self.slug)


class ArticleQuerySet(models.QuerySet["Article"]):
    def published(self) -> ArticleQuerySet:
        return self.filter(status=Article.Status.PUBLISHED, published_at__lte=timezone.now())

    def due_for_publishing(self) -> ArticleQuerySet:
        return self.filter(status=Article.Status.SCHEDULED, publish_at__lte=timezone.now())

    def owned_by(self, user: Any) -> ArticleQuerySet:
        """The "own article" rule: the pieces ``user`` created or is one of the authors of."""
        authored = ArticleAuthor.objects.filter(author__user=user).values("article_id")
        return self.filter(models.Q(created_by=user) | models.Q(pk__in=authored))


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        SCHEDULED = "scheduled", "Scheduled"
        PUBLISHED = "published", "Published"
        UNPUBLISHED = "unpublished", "Unpublished"

    title = models.CharField(max_length=200, validators=[validate_single_line])
    slug = models.SlugField(
        max_length=200,
        unique=True,
        validators=[validate_single_line],
        help_text="The last part of the article's address.",
    )
    standfirst = models.TextField(
        blank=True,
        validators=[validate_single_line],
        help_text="A one-paragraph summary shown under the title, without line breaks.",
    )
    body = models.TextField(blank=True, help_text="The article text. Stored as sanitised HTML.")
    hero_image = models.ImageField(
        upload_to="articles/%Y/%m/",
        blank=True,
        validators=[validate_hero_image],
        help_text=hero_image_help_text(),
    )
    hero_image_page = models.ImageField(
        upload_to="articles/renditions/",
        blank=True,
        editable=False,
        help_text="The hero image resized for the article page (made on save).",
    )
    # Stored when the rendition is made, so a page never opens the image file to size its <img>.
    hero_image_page_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    hero_image_page_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    hero_image_email = models.ImageField(
        upload_to="articles/renditions/",
        blank=True,
        editable=False,
        help_text="The hero image resized for the newsletter email (made on save).",
    )
    hero_image_alt = models.CharField(
        max_length=250,
        blank=True,
        validators=[validate_single_line],
        help_text="Describes the image for readers who cannot see it.",
    )
    hero_image_credit = models.CharField(
        max_length=200, blank=True, validators=[validate_single_line], help_text='Shown as "Image credit: …".'
    )
    authors: models.ManyToManyField[Author, ArticleAuthor] = models.ManyToManyField(
        Author, through="ArticleAuthor", related_name="articles", blank=True
    )
    editor = models.ForeignKey(
        Author,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="edited_articles",
        help_text='Shown as "Edited/Reviewed by".',
    )
    topics: models.ManyToManyField[Topic, ArticleTopic] = models.ManyToManyField(
        Topic, through="ArticleTopic", related_name="articles", blank=True
    )
    disclaimer = models.TextField(blank=True, help_text="Leave blank to show the site's default disclaimer.")
    status = models.CharField(
        max_length=20,
        choices=Status.choices,
        default=Status.DRAFT,
        db_index=True,
        help_text="Changed only by the workflow buttons and actions (submit, approve, schedule, publish, unpublish).",
    )
    publish_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a scheduled article goes live (checked every 30 seconds). Set it, then press Schedule.",
        db_index=True,
    )
    published_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="When the article first went live; shown on the page."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    reading_minutes = models.PositiveSmallIntegerField(
        default=1, editable=False, help_text="Derived from the words and images of the body on every save."
    )
    # The body's opening as plain text, derived on every save: search snippets are cut from it.
    opening_text = models.TextField(blank=True, default="", editable=False)
    meta_title = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_single_line],
        help_text="Title for search engines; blank uses the title.",
    )
    meta_description = models.CharField(
        max_length=300,
        blank=True,
        validators=[validate_single_line],
        help_text="Description for search engines; blank uses the standfirst.",
    )
    canonical_url = models.URLField(blank=True, help_text="Only when the piece first appeared elsewhere.")
    is_featured = models.BooleanField(default=False, help_text="Show at the top of the home page.")
    send_to_subscribers = models.BooleanField(
        default=True, help_text="Email this article to subscribers when it is published."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ArticleQuerySet.as_manager()
    # Every saved change is kept: who (history_user), when (history_date) and the
    # full row, so the admin can compare versions and restore one.
    history = HistoricalRecords(
        excluded_fields=[
            "reading_minutes",
            "opening_text",
            "hero_image_page",
            "hero_image_page_width",
            "hero_image_page_height",
            "hero_image_email",
        ]
    )

    if TYPE_CHECKING:
        article_authors: RelatedManager[ArticleAuthor]
        article_topics: RelatedManager[ArticleTopic]
        transitions: RelatedManager[ArticleTransition]

    class Meta:
        ordering = ["-published_at", "-created_at"]
        indexes = [
            models.Index(fields=["status", "-published_at"], name="article_status_published"),
            # The public listings (articles/listings.py): their count reads this index alone,
            # their page reads it newest first and stops after the page.
            models.Index(
                fields=["-published_at", "-id"], condition=models.Q(status="published"), name="article_listed"
            ),
            # The home page's featured piece: the latest of a few, found without reading the others.
            models.Index(
                fields=["-published_at", "-id"],
                condition=models.Q(status="published", is_featured=True),
                name="article_featured",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(hero_image="") | ~models.Q(hero_image_alt=""),
                name="article_hero_image_has_alt",
                violation_error_message="A hero image needs alt text.",
            ),
            models.CheckConstraint(
                condition=models.Q(hero_image="") | ~models.Q(hero_image_credit=""),
                name="article_hero_image_has_credit",
                violation_error_message="A hero image needs an image credit.",
            ),
        ]
        permissions = [
            ("submit_article", "Can submit an article for review"),
            ("approve_article", "Can approve an article"),
            ("schedule_article", "Can schedule an article"),
            ("publish_article", "Can publish an article"),
            ("unpublish_article", "Can unpublish an article"),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Every path that stores a body (admin, API, /write/, shell) goes through
        # here, so the stored HTML is always the sanitised one.
        self.body = sanitise_html(self.body)
        self.reading_minutes = reading_minutes(self.body)
        self.opening_text = opening_text(self.body)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "body" in update_fields:
            kwargs["update_fields"] = {*update_fields, "reading_minutes", "opening_text"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return slug_url("articles:detail", self.slug)


class ArticleInReview(Article):
    """The review queue in the admin: articles waiting for an editor."""

    class Meta:
        proxy = True
        verbose_name = "article in review"
        verbose_name_plural = "review queue"


class ArticleTransition(models.Model):
    """One step of the editorial workflow: who moved an article from which state to which, and when."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=20, choices=Article.Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Article.Status.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Blank when the system did it (the scheduler, a public submission).",
    )
    at = models.DateTimeField(default=timezone.now)
    note = models.CharField(
        max_length=2000, blank=True, help_text="The editor's note with the step (emailed to a contributor)."
    )
    action = models.CharField(
        max_length=20, blank=True, help_text="The workflow step that made it (e.g. decline, which leads to draft)."
    )

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["article", "at"], name="transition_article_at")]

    def __str__(self) -> str:
        return f"{self.article_id}: {self.from_status or 'new'} → {self.to_status}"


class ArticleAuthor(models.Model):
    """An article's authors in byline order: position 0 is the byline."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="article_authors")
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["article", "author"], name="article_author_once")]

    def __str__(self) -> str:
        return f"{self.author} on {self.article}"


class ArticleTopic(models.Model):
    """An article's topics in order: position 0 is the primary topic."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="article_topics")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["article", "topic"], name="article_topic_once")]

    def __str__(self) -> str:
        return f"{self.topic} on {self.article}"


# --- shared previews, corrections ---------------------------------------------------------------


class PreviewLink(models.Model):
    """A link that shows an unpublished article's page to someone without an account.

    The URL carries a signed token naming this row and a random key whose hash is
    stored here; the row decides whether the link still works (``expires_at``,
    ``revoked_at``), so revoking it takes effect at once whatever the signature says.
    """

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="preview_links")
    label = models.CharField(
        max_length=120,
        blank=True,
        validators=[validate_single_line],
        help_text="Who the link is for (e.g. “Legal review”); only staff see it.",
    )
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the random key in the link.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opens = models.PositiveIntegerField(default=0, help_text="How often the link was opened.")

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.label or f"Preview link {self.pk}"

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class PreviewLinkOpen(models.Model):
    """One opening of a preview link: when, and the kind of browser (no address is kept)."""

    link = models.ForeignKey(PreviewLink, on_delete=models.CASCADE, related_name="visits")
    at = models.DateTimeField(default=timezone.now)
    browser = models.CharField(max_length=60, help_text="A coarse description, e.g. “Firefox on Windows”.")

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["link", "-at"], name="preview_open_link_at")]

    def __str__(self) -> str:
        return f"{self.browser} at {self.at:%Y-%m-%d %H:%M}"


class Correction(models.Model):
    """A correction or update note on a published piece, shown above its disclaimer."""

    class Kind(models.TextChoices):
        CORRECTION = "correction", "Correction"
        UPDATE = "update", "Update"

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="corrections")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CORRECTION)
    noted_at = models.DateTimeField(default=timezone.now, help_text="The date shown with the note.")
    text = models.TextField(help_text="Plain text: what was wrong and what the piece says now.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["noted_at", "pk"]
        indexes = [models.Index(fields=["article", "noted_at"], name="correction_article_noted")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.noted_at:%Y-%m-%d}"
