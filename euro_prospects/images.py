"""Safe image uploads: only real raster images, within size and pixel caps,
re-encoded by Pillow so nothing but pixels reaches the media directory.

Re-encoding drops whatever rode along in the file (scripts in polyglot files,
EXIF with GPS positions, colour-profile tricks), and the stored name gets the
extension of the format actually written, so the web server sends the right
Content-Type. SVG is refused: it is a document that can carry scripts.

Use ``validate_image_upload`` as a form/model field validator and
``reencode_image`` to get the bytes to store::

    image = models.ImageField(validators=[validate_image_upload])
    ...
    instance.image = reencode_image(form.cleaned_data["image"])
"""

from __future__ import annotations

import io
import os
import warnings
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow format name -> (format to write, extension, content type).
OUTPUT_FORMATS: dict[str, tuple[str, str, str]] = {
    "JPEG": ("JPEG", "jpg", "image/jpeg"),
    "MPO": ("JPEG", "jpg", "image/jpeg"),  # phone cameras' multi-picture JPEG
    "PNG": ("PNG", "png", "image/png"),
    "WEBP": ("WEBP", "webp", "image/webp"),
    "GIF": ("PNG", "png", "image/png"),  # first frame only: no animation in articles
}
CONTENT_TYPES = {extension: content_type for _, extension, content_type in OUTPUT_FORMATS.values()}


def _read_bytes(upload: IO[bytes] | Any) -> bytes:
    if hasattr(upload, "seek"):
        upload.seek(0)
    limit = settings.IMAGE_MAX_BYTES
    data: bytes = upload.read(limit + 1)
    if len(data) > limit:
        raise ValidationError(
            f"The image is larger than {limit // (1024 * 1024)} MB. Please upload a smaller file.",
            code="image_too_large",
        )
    if hasattr(upload, "seek"):
        upload.seek(0)
    return data


def _open_checked(data: bytes) -> Image.Image:
    if data.lstrip()[:5].lower() in {b"<?xml", b"<svg "} or b"<svg" in data[:1024].lower():
        raise ValidationError("SVG images are not accepted. Please upload a JPEG, PNG or WebP.", code="image_svg")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning, OSError):
        raise ValidationError(
            "This file is not an image we can read. Please upload a JPEG, PNG or WebP.", code="image_invalid"
        ) from None
    if image.format not in OUTPUT_FORMATS:
        raise ValidationError(
            f"{image.format} images are not accepted. Please upload a JPEG, PNG or WebP.", code="image_format"
        )
    width, height = image.size
    if width * height > settings.IMAGE_MAX_PIXELS:
        raise ValidationError(
            f"The image is {width}x{height} pixels, more than the {settings.IMAGE_MAX_PIXELS:,} allowed.",
            code="image_too_many_pixels",
        )
    return image


def validate_image_upload(upload: IO[bytes] | Any) -> None:
    """Django validator: a JPEG, PNG, WebP or GIF within the caps that Pillow can decode."""
    image = _open_checked(_read_bytes(upload))
    try:
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        raise ValidationError("The image file is damaged. Please upload it again.", code="image_invalid") from None


def reencode_image(upload: IO[bytes] | Any, *, name: str | None = None) -> ContentFile[bytes]:
    """The upload decoded and written anew by Pillow, as a ContentFile named
    ``<stem>.<extension of the written format>``. Raises ValidationError like
    ``validate_image_upload``."""
    image = _open_checked(_read_bytes(upload))
    output_format, extension, _ = OUTPUT_FORMATS[image.format or ""]
    try:
        image = ImageOps.exif_transpose(image) or image  # keep the picture upright once EXIF is gone
        if output_format == "JPEG" and image.mode not in {"RGB", "L"}:
            image = image.convert("RGB")
        elif output_format == "PNG" and image.mode not in {"RGB", "RGBA", "L", "LA", "P"}:
            image = image.convert("RGBA")
        buffer = io.BytesIO()
        options: dict[str, Any] = {"optimize": True}
        if output_format in {"JPEG", "WEBP"}:
            options["quality"] = 85
        image.save(buffer, format=output_format, **options)
    except (OSError, ValueError):
        raise ValidationError("The image file is damaged. Please upload it again.", code="image_invalid") from None
    original = name or getattr(upload, "name", None) or "image"
    stem = os.path.splitext(os.path.basename(original))[0] or "image"
    return ContentFile(buffer.getvalue(), name=f"{stem}.{extension}")


def content_type_for(filename: str) -> str:
    """The Content-Type to serve a stored image with; anything else is a download."""
    extension = filename.rsplit(".", 1)[-1].lower()
    return CONTENT_TYPES.get(extension, "application/octet-stream")
