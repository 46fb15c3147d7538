"""Hero images: what an upload must be, and the renditions made from it."""

from __future__ import annotations

from io import BytesIO
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.utils.functional import lazy
from PIL import Image

from euro_prospects.images import validate_image_upload

MIN_WIDTH, MIN_HEIGHT = 1200, 630
ALLOWED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP"}

# name -> (largest width, JPEG quality)
RENDITIONS = {"page": (1600, 82), "email": (600, 80)}


def _hero_image_help_text() -> str:
    megabytes = settings.IMAGE_MAX_BYTES / (1024 * 1024)
    return (
        f"JPEG, PNG or WebP, at least {MIN_WIDTH} x {MIN_HEIGHT} pixels, at most {megabytes:g} MB. "
        "Alt text and credit are required."
    )


def _contributor_image_help_text() -> str:
    megabytes = settings.IMAGE_MAX_BYTES / (1024 * 1024)
    return (
        f"One picture for the top of your piece: JPEG, PNG or WebP, at least {MIN_WIDTH} x {MIN_HEIGHT} "
        f"pixels, at most {megabytes:g} MB. Only send an image you took yourself or may share."
    )


# Read when shown, so the forms state the limits the settings (IMAGE_MAX_BYTES) impose.
hero_image_help_text = lazy(_hero_image_help_text, str)
contributor_image_help_text = lazy(_contributor_image_help_text, str)


def validate_hero_image(upload: File) -> None:
    """The site-wide upload checks (size and pixel caps, no SVG, decodable),
    then what a hero image needs: a photo format, and large enough for the page."""
    validate_image_upload(upload)
    position = upload.tell() if hasattr(upload, "tell") else 0
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            image_format = image.format
            width, height = image.size
    finally:
        upload.seek(position)
    if image_format not in ALLOWED_FORMATS:
        raise ValidationError("Please upload a JPEG, PNG or WebP image.", code="bad_format")
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValidationError(
            f"The image is {width} x {height} pixels; it must be at least {MIN_WIDTH} x {MIN_HEIGHT}.",
            code="too_small",
        )


def rendition(source: File, max_width: int, quality: int) -> ContentFile:
    """A JPEG copy of ``source`` no wider than ``max_width``."""
    source.seek(0)
    with Image.open(source) as original:
        image = original.convert("RGB")
    if image.width > max_width:
        height = round(image.height * max_width / image.width)
        image = image.resize((max_width, height), Image.Resampling.LANCZOS)
    buffer = BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True)
    return ContentFile(buffer.getvalue())


def rendition_name(original: str, suffix: str) -> str:
    return f"{PurePath(original).stem}-{suffix}.jpg"
