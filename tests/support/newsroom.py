"""Building a small newsroom for the public-site tests."""

from __future__ import annotations

import io
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from articles.models import Article, Author, SiteSettings, Topic
from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory


def hero_image_file(name: str = "hero.png", colour: tuple[int, int, int] = (40, 70, 120)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 675), colour).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def full_article(**overrides: object) -> Article:
    """An article with every part of the anatomy filled in."""
    energy = TopicFactory.create(name="Energy", slug="energy", description="Grids, gas and power prices.")
    economy = TopicFactory.create(name="Economy", slug="economy")
    writer = AuthorFactory.create(
        name="Anna Kowal", slug="anna-kowal", role="Ukraine Correspondent", bio="Anna reports from the east."
    )
    editor = AuthorFactory.create(name="Piet Lund", slug="piet-lund", role="Managing Editor")
    fields: dict[str, object] = {
        "title": "Grid links across the border",
        "slug": "grid-links-across-the-border",
        "standfirst": "Interconnectors promise cheaper power, but every crossing is a negotiation.",
        "body": "<h2>Where things stand</h2><p>Engineers and ministers disagree about interconnector capacity.</p>"
        "<h2>What comes next</h2><p>A second round of talks opens in spring.</p>",
        "hero_image": hero_image_file(),
        "hero_image_alt": "Pylons in a snowy field",
        "hero_image_credit": "Demo Photo Desk",
        "editor": editor,
        "reading_minutes": 8,
        "published_at": timezone.now() - timedelta(hours=2),
    }
    fields.update(overrides)
    return ArticleFactory.create(authors=[writer], topics=[energy, economy], **fields)


def busy_newsroom(articles: int = 15, authors: int = 6, topics: int = 6) -> tuple[list[Topic], list[Author]]:
    """Many articles, each with several authors and topics, for query-count tests."""
    SiteSettings.load()
    topic_list = [TopicFactory.create() for _ in range(topics)]
    author_list = [AuthorFactory.create() for _ in range(authors)]
    now = timezone.now()
    for number in range(articles):
        ArticleFactory.create(
            authors=author_list[number % 3 : number % 3 + 3],
            topics=topic_list[number % 2 : number % 2 + 4],
            editor=author_list[-1],
            is_featured=number == 0,
            published_at=now - timedelta(hours=number + 1),
        )
    return topic_list, author_list
