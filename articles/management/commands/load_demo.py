"""Load the demo newsroom: topics, authors, published articles, an editor and a correspondent.

The accounts are exactly what they say: ``editor`` is a member of Editors and
nothing more (not a superuser), ``correspondent`` a member of Authors.

Idempotent: running it again updates the same rows. All text is invented for
the demo and describes no real person or event.
"""

from datetime import timedelta
from typing import Any, TypedDict

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from articles import demo_images, roles, services
from articles.models import Article, ArticleAuthor, ArticleTopic, Author, SiteSettings, Topic

DEMO_EDITOR_USERNAME = "editor"
DEMO_EDITOR_PASSWORD = "demo-editor-password"
DEMO_CORRESPONDENT_USERNAME = "correspondent"
DEMO_CORRESPONDENT_PASSWORD = "demo-correspondent-password"

TOPICS = [
    ("Enlargement", "enlargement", "Candidate countries, accession talks and the road to membership."),
    ("Energy", "energy", "Grids, gas, renewables and the politics of power prices."),
    ("Eastern Europe", "eastern-europe", "Reporting from the Union's eastern neighbourhood."),
    ("Economy", "economy", "Budgets, trade and the single market."),
]

AUTHORS = [
    ("Mara Velden", "mara-velden", "Eastern Europe Correspondent", "Mara covers the eastern neighbourhood."),
    ("Tomas Ashgrove", "tomas-ashgrove", "Energy Editor", "Tomas writes about grids and power markets."),
    ("Ilse Moravec", "ilse-moravec", "Managing Editor", "Ilse reviews and edits the publication's analysis."),
]

PARAGRAPH = (
    "<p>Negotiators met again this week in a small conference room that has seen more drafts than "
    "decisions. The questions on the table were familiar ones: who pays, who decides, and how quickly "
    "a promise made in a summit communiqué can become a rule that a customs officer applies.</p>"
)


class DemoArticle(TypedDict):
    slug: str
    title: str
    standfirst: str
    topics: list[str]
    authors: list[str]
    featured: bool
    days_ago: int


ARTICLES: list[DemoArticle] = [
    {
        "slug": "a-slow-road-to-the-single-grid",
        "title": "A slow road to the single grid",
        "standfirst": "Interconnectors promise cheaper power for everyone, but each border crossing "
        "is its own negotiation.",
        "topics": ["energy", "economy"],
        "authors": ["tomas-ashgrove"],
        "featured": True,
        "days_ago": 1,
    },
    {
        "slug": "accession-talks-enter-the-technical-phase",
        "title": "Accession talks enter the technical phase",
        "standfirst": "After the speeches come the chapters: thirty-odd policy areas, each with its own "
        "benchmarks and its own surprises.",
        "topics": ["enlargement", "eastern-europe"],
        "authors": ["mara-velden"],
        "featured": False,
        "days_ago": 3,
    },
    {
        "slug": "what-a-budget-review-can-and-cannot-fix",
        "title": "What a budget review can and cannot fix",
        "standfirst": "A mid-term review is a chance to move money, not to change the rules that decide where it goes.",
        "topics": ["economy"],
        "authors": ["tomas-ashgrove", "mara-velden"],
        "featured": False,
        "days_ago": 6,
    },
]


class Command(BaseCommand):
    help = "Load demo topics, authors and articles, and the demo editor (Editors) and correspondent (Authors)."

    def add_illustration(self, article: Article, *, seed: int) -> None:
        """A generated hero image with its alt text and credit, and its page and email renditions."""
        article.hero_image.save(f"{article.slug}.jpg", demo_images.hero_image(seed, f"{article.slug}.jpg"), save=False)
        article.hero_image_alt = "Abstract illustration: soft circles of light above layered hills"
        article.hero_image_credit = demo_images.CREDIT
        article.save(update_fields=["hero_image", "hero_image_alt", "hero_image_credit"])
        services.refresh_renditions(article=article)

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        SiteSettings.load()
        topics = {
            slug: Topic.objects.update_or_create(slug=slug, defaults={"name": name, "description": description})[0]
            for name, slug, description in TOPICS
        }
        authors = {
            slug: Author.objects.update_or_create(slug=slug, defaults={"name": name, "role": role, "bio": bio})[0]
            for name, slug, role, bio in AUTHORS
        }
        now = timezone.now()
        for data in ARTICLES:
            published_at = now - timedelta(days=data["days_ago"])
            article, created = Article.objects.get_or_create(
                slug=data["slug"],
                defaults={
                    "title": data["title"],
                    "standfirst": data["standfirst"],
                    "body": "<h2>Where things stand</h2>" + PARAGRAPH * 3 + "<h2>What comes next</h2>" + PARAGRAPH * 2,
                    "editor": authors["ilse-moravec"],
                    "status": Article.Status.PUBLISHED,
                    "published_at": published_at,
                    "is_featured": data["featured"],
                    "send_to_subscribers": False,
                },
            )
            if created:
                for position, slug in enumerate(data["authors"]):
                    ArticleAuthor.objects.create(article=article, author=authors[slug], position=position)
                for position, slug in enumerate(data["topics"]):
                    ArticleTopic.objects.create(article=article, topic=topics[slug], position=position)
            if not article.hero_image:
                self.add_illustration(article, seed=ARTICLES.index(data))
        site = SiteSettings.load()
        if not site.default_share_image:
            site.default_share_image.save("euro-prospects-share.jpg", demo_images.share_image(), save=False)
            site.default_share_image_alt = "Abstract hills under a violet sky, with the name Euro Prospects"
            site.save()

        roles.ensure_groups()
        user_model = get_user_model()
        editor, created = user_model.objects.get_or_create(
            username=DEMO_EDITOR_USERNAME, defaults={"is_staff": True, "email": "editor@example.org"}
        )
        if created:
            editor.set_password(DEMO_EDITOR_PASSWORD)
        # An Editor, not a superuser, also in a database an older demo made a superuser.
        editor.is_staff, editor.is_superuser = True, False
        editor.save()
        editor.groups.set([Group.objects.get(name=roles.EDITORS)])
        editor.user_permissions.clear()
        if not Author.objects.filter(user=editor).exists():
            Author.objects.filter(slug="ilse-moravec", user__isnull=True).update(user=editor)

        correspondent, created = user_model.objects.get_or_create(
            username=DEMO_CORRESPONDENT_USERNAME,
            defaults={"is_staff": True, "email": "correspondent@example.org", "first_name": "Mara"},
        )
        if created:
            correspondent.set_password(DEMO_CORRESPONDENT_PASSWORD)
            correspondent.save()
        correspondent.is_superuser = False
        correspondent.save()
        correspondent.groups.set([Group.objects.get(name=roles.AUTHORS)])
        correspondent.user_permissions.clear()
        if not Author.objects.filter(user=correspondent).exists():
            Author.objects.filter(slug="mara-velden", user__isnull=True).update(user=correspondent)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded: {len(topics)} topics, {len(authors)} authors, {len(ARTICLES)} articles."
            )
        )
        self.stdout.write(
            f"Log in at /admin/ as {DEMO_EDITOR_USERNAME!r} with password {DEMO_EDITOR_PASSWORD!r}: "
            "an Editor (Editors group; not a superuser)."
        )
        self.stdout.write(
            f"A correspondent: {DEMO_CORRESPONDENT_USERNAME!r} with password {DEMO_CORRESPONDENT_PASSWORD!r} "
            "(Authors group; not a superuser)."
        )
        self.stdout.write("No demo superuser: `manage.py createsuperuser` makes one (users and groups).")
