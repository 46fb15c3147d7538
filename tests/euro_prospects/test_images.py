"""Uploaded images are re-encoded, capped and never SVG."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from PIL import Image

from euro_prospects.images import content_type_for, reencode_image, validate_image_upload


def image_upload(
    fmt: str = "JPEG", size: tuple[int, int] = (64, 48), name: str = "photo.jpg", **save
) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt, **save)
    return SimpleUploadedFile(name, buffer.getvalue())


def test_a_jpeg_is_accepted_and_reencoded_as_jpeg():
    upload = image_upload()
    validate_image_upload(upload)
    stored = reencode_image(upload)
    assert stored.name == "photo.jpg"
    assert Image.open(io.BytesIO(stored.read())).format == "JPEG"


def test_reencoding_drops_exif_metadata_such_as_gps():
    exif = Image.Exif()
    exif[0x010F] = "Camera maker that should not leak"
    upload = image_upload(exif=exif.tobytes())
    assert b"Camera maker" in upload.read()
    stored = reencode_image(upload).read()
    assert b"Camera maker" not in stored


def test_a_file_disguised_with_an_image_extension_gets_the_extension_of_its_real_format():
    upload = image_upload(fmt="PNG", name="holiday.jpg")
    stored = reencode_image(upload)
    assert stored.name == "holiday.png"
    assert content_type_for(stored.name) == "image/png"


def test_bytes_appended_after_the_image_do_not_survive():
    upload = image_upload()
    polyglot = SimpleUploadedFile("photo.jpg", upload.read() + b"<script>alert(document.cookie)</script>")
    assert b"<script>" not in reencode_image(polyglot).read()


def test_svg_is_refused():
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    with pytest.raises(ValidationError, match="SVG images are not accepted"):
        validate_image_upload(SimpleUploadedFile("logo.svg", svg))
    with pytest.raises(ValidationError, match="SVG"):
        reencode_image(SimpleUploadedFile("logo.png", b'<?xml version="1.0"?>' + svg))


def test_a_text_file_named_like_an_image_is_refused():
    with pytest.raises(ValidationError, match="not an image"):
        validate_image_upload(SimpleUploadedFile("photo.jpg", b"just some words, not pixels"))


def test_a_truncated_image_is_refused():
    data = image_upload(size=(400, 400)).read()
    with pytest.raises(ValidationError):
        validate_image_upload(SimpleUploadedFile("photo.jpg", data[: len(data) // 3]))


@override_settings(IMAGE_MAX_BYTES=2048)
def test_a_file_over_the_size_cap_is_refused():
    upload = image_upload(fmt="PNG", size=(300, 300), name="big.png", compress_level=0)
    with pytest.raises(ValidationError, match="larger than"):
        validate_image_upload(upload)


@override_settings(IMAGE_MAX_PIXELS=10_000)
def test_an_image_over_the_pixel_cap_is_refused_before_decoding():
    upload = image_upload(fmt="PNG", size=(200, 200), name="wide.png")
    with pytest.raises(ValidationError, match="200x200 pixels"):
        validate_image_upload(upload)


def test_formats_other_than_web_raster_images_are_refused():
    upload = image_upload(fmt="BMP", name="scan.bmp")
    with pytest.raises(ValidationError, match="BMP images are not accepted"):
        validate_image_upload(upload)


def test_stored_images_are_served_with_their_content_type(client, settings, tmp_path):
    from django.core.files.storage import FileSystemStorage
    from django.views.static import serve

    storage = FileSystemStorage(location=tmp_path)
    name = storage.save("articles/hero.webp", reencode_image(image_upload(fmt="WEBP", name="hero.webp")))
    from django.test import RequestFactory

    response = serve(RequestFactory().get("/media/" + name), name, document_root=str(tmp_path))
    assert response["Content-Type"] == content_type_for(name) == "image/webp"
    assert content_type_for("page.html") == "application/octet-stream"


@override_settings(IMAGE_MAX_BYTES=3 * 1024 * 1024)
def test_the_forms_state_the_size_cap_the_settings_impose():
    from articles.forms import WriteForm
    from articles.models import Article

    hero = Article._meta.get_field("hero_image").help_text
    assert "at most 3 MB" in str(hero)
    assert "at most 3 MB" in str(WriteForm().fields["image"].help_text)
