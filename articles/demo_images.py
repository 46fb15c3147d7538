"""Pictures for the demo newsroom, drawn by Pillow when the demo loads.

No file is downloaded or copied: each image is made here from a seed (gradients,
circles and bands in the publication's colours), so the demo's hero images and its
default share image are ours to ship, with an invented credit.
"""

from __future__ import annotations

import io
import random

from django.core.files.base import ContentFile
from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 1600, 900
SHARE_SIZE = (1200, 630)
CREDIT = "Illustration: Euro Prospects (generated)"

# (top colour, bottom colour, accent colours): a few moods in the site's blues and a warm accent.
PALETTES = [
    ((16, 42, 86), (54, 110, 160), [(240, 196, 25), (235, 235, 235), (120, 170, 210)]),
    ((30, 30, 46), (120, 72, 60), [(250, 170, 90), (220, 210, 190), (90, 120, 150)]),
    ((14, 70, 72), (150, 190, 170), [(250, 240, 210), (30, 40, 60), (230, 120, 80)]),
    ((60, 40, 90), (200, 150, 170), [(255, 220, 120), (250, 250, 250), (70, 60, 120)]),
]


def _gradient(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    _width, height = size
    column = Image.new("RGB", (1, height))
    for y in range(height):
        share = y / max(1, height - 1)
        column.putpixel((0, y), tuple(round(a + (b - a) * share) for a, b in zip(top, bottom, strict=True)))
    return column.resize(size)


def abstract_image(seed: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Image.Image:
    """An abstract picture: a sky-like gradient, soft circles, and a horizon of bands."""
    rng = random.Random(seed)  # noqa: S311  (shapes, not secrets: the same picture on every load)
    top, bottom, accents = PALETTES[seed % len(PALETTES)]
    image = _gradient(size, top, bottom)
    width, height = size
    glow = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(glow)
    for _ in range(7):
        radius = rng.randint(height // 10, height // 3)
        x, y = rng.randint(0, width), rng.randint(0, height * 2 // 3)
        colour = (*rng.choice(accents), rng.randint(60, 150))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    glow = glow.filter(ImageFilter.GaussianBlur(radius=height // 30))
    image.paste(glow, (0, 0), glow)
    bands = ImageDraw.Draw(image)
    horizon = height * rng.randint(58, 72) // 100
    for step in range(5):
        shade = tuple(max(0, channel - 25 * (step + 1)) for channel in bottom)
        top_edge = horizon + step * (height - horizon) // 5
        points = [(0, top_edge)]
        for x in range(0, width + 200, 200):
            points.append((x, top_edge + rng.randint(-height // 25, height // 25)))
        points += [(width, height), (0, height)]
        bands.polygon(points, fill=shade)
    return image


def jpeg(image: Image.Image, name: str) -> ContentFile[bytes]:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, optimize=True, progressive=True)
    return ContentFile(buffer.getvalue(), name=name)


def hero_image(seed: int, name: str) -> ContentFile[bytes]:
    return jpeg(abstract_image(seed), name)


def share_image() -> ContentFile[bytes]:
    """The site's default share image: an abstract picture with the publication's name."""
    image = abstract_image(7, SHARE_SIZE)
    draw = ImageDraw.Draw(image)
    width, height = SHARE_SIZE
    draw.rectangle((0, height - 140, width, height), fill=(16, 42, 86))
    draw.text((60, height - 105), "EURO PROSPECTS", fill=(255, 255, 255), font_size=64)
    return jpeg(image, "euro-prospects-share.jpg")
