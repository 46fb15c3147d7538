"""A small invented newsroom with pictures, so the screenshots look like the real thing."""

from __future__ import annotations

import io
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image, ImageDraw

from articles.models import Article, SiteSettings
from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory

BODY = (
    "<h2>Where things stand</h2>"
    "<p>Officials from both sides met again this week in a conference room that has seen more drafts than "
    "decisions. The questions were familiar: who pays, who decides, and how fast a promise can become a rule.</p>"
    "<p>Diplomats describe the mood as constructive but slow. Each chapter needs the agreement of every "
    "capital, and each capital has an election somewhere on its horizon.</p>"
    "<h2>What comes next</h2>"
    "<p>A second round of technical talks is planned for the spring. If it goes well, the first chapters "
    "could close before the summer recess; if not, the calendar slips by another year.</p>"
)


def landscape(sky: tuple[int, int, int], land: tuple[int, int, int], name: str) -> SimpleUploadedFile:
    """A simple drawn landscape: a sky gradient, a sun and two hills."""
    width, height = 1200, 675
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        shade = y / height
        draw.line([(0, y), (width, y)], fill=tuple(int(c * (1 - 0.45 * shade) + 255 * 0.2 * shade) for c in sky))
    draw.ellipse([820, 120, 960, 260], fill=(255, 226, 160))
    draw.ellipse([-300, 420, 900, 1100], fill=tuple(max(c - 30, 0) for c in land))
    draw.ellipse([400, 470, 1600, 1150], fill=land)
    for x in range(150, 1150, 180):
        draw.line([(x, 330), (x - 40, 560)], fill=(60, 60, 70), width=5)
        draw.line([(x, 330), (x + 40, 560)], fill=(60, 60, 70), width=5)
        draw.line([(x - 50, 360), (x + 50, 360)], fill=(60, 60, 70), width=5)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


def build_newsroom() -> dict[str, object]:
    SiteSettings.load()
    energy = TopicFactory.create(name="Energy", slug="energy", description="Grids, gas, renewables and power prices.")
    enlargement = TopicFactory.create(
        name="Enlargement", slug="enlargement", description="Candidate countries and the road to membership."
    )
    east = TopicFactory.create(name="Eastern Europe", slug="eastern-europe")
    economy = TopicFactory.create(name="Economy", slug="economy")
    correspondent = AuthorFactory.create(
        name="Daria Solnik",
        slug="daria-solnik",
        role="Ukraine Correspondent",
        bio="Daria reports on the Union's eastern neighbourhood from Kyiv and Warsaw.",
    )
    energy_writer = AuthorFactory.create(
        name="Jonas Feld", slug="jonas-feld", role="Energy Editor", bio="Jonas writes about grids and markets."
    )
    editor = AuthorFactory.create(name="Hanna Voss", slug="hanna-voss", role="Managing Editor")
    now = timezone.now()
    featured = ArticleFactory.create(
        title="Accession talks enter the technical phase",
        slug="accession-talks-enter-the-technical-phase",
        standfirst="After the speeches come the chapters: thirty-odd policy areas, each with its own benchmarks "
        "and its own surprises.",
        body=BODY,
        hero_image=landscape((92, 132, 186), (88, 128, 76), "talks.jpg"),
        hero_image_alt="Power lines crossing green hills under a blue sky",
        hero_image_credit="Demo Photo Desk",
        editor=editor,
        reading_minutes=8,
        is_featured=True,
        published_at=now - timedelta(hours=3),
        authors=[correspondent],
        topics=[enlargement, east, economy],
    )
    pieces = [
        ("A slow road to the single grid", "Interconnectors promise cheaper power, but each border is a negotiation.",
         [energy, economy], [energy_writer], (200, 140, 90), (120, 110, 70)),
        ("Gas storage before the winter", "Tanks are fuller than last year; prices tell a more nervous story.",
         [energy], [energy_writer], (120, 150, 190), (90, 120, 90)),
        ("What a budget review can and cannot fix", "A mid-term review moves money; it does not change the rules.",
         [economy], [energy_writer, correspondent], None, None),
        ("Border towns wait for the new crossing", "A bridge finished two years ago still has no customs post.",
         [east, enlargement], [correspondent], (150, 120, 170), (100, 110, 80)),
    ]  # fmt: skip
    for number, (title, standfirst, topics, authors, sky, land) in enumerate(pieces, start=1):
        extra: dict[str, object] = {}
        if sky and land:
            extra = {
                "hero_image": landscape(sky, land, f"piece-{number}.jpg"),
                "hero_image_alt": "Hills and pylons at dusk",
                "hero_image_credit": "Demo Photo Desk",
            }
        ArticleFactory.create(
            title=title,
            slug=title.lower().replace(" ", "-"),
            standfirst=standfirst,
            body=BODY,
            editor=editor,
            reading_minutes=4 + number,
            published_at=now - timedelta(days=number),
            authors=authors,
            topics=topics,
            **extra,
        )
    return {"featured": featured, "energy": energy, "correspondent": correspondent}


def latest(title: str) -> Article:
    return Article.objects.get(title=title)
