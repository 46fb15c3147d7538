"""Readers' link tokens never reach a log line, and newsletter logs name subscribers by id."""

import logging
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from euro_prospects.observability import JsonFormatter, PlainFormatter, RequestIdFilter
from newsletter import sending
from newsletter.models import Subscriber
from newsletter.sending import campaigns
from newsletter.tokens import make_token
from tests.support.factories import ArticleFactory, SubscriberFactory
from tests.support.smtp import free_port
from tests.support.workers import ROOT, database_url, wait_until


def every_line(caplog: pytest.LogCaptureFixture, logger: str = "") -> str:
    """What caplog saw, and what our plain and JSON formats make of the same records."""
    plain = PlainFormatter("%(levelname)s %(name)s %(message)s")
    json_format = JsonFormatter()
    records = [record for record in caplog.records if record.name.startswith(logger)]
    lines = [record.getMessage() for record in records]
    for record in records:
        RequestIdFilter().filter(record)
        lines += [plain.format(record), json_format.format(record)]
    return "\n".join(lines)


@pytest.mark.django_db
def test_a_form_error_on_the_preferences_page_logs_no_token(client, caplog):
    reader = SubscriberFactory.create()
    token = make_token(reader.pk, "preferences")
    with caplog.at_level(logging.INFO):
        response = client.post(f"/newsletter/preferences/{token}/", {"all_topics": "1", "cadence": "hourly"})
    assert response.status_code == 400
    logged = every_line(caplog)
    assert "Bad Request: /newsletter/preferences/[token]/" in logged
    assert token not in logged


@pytest.mark.django_db
def test_a_refused_csrf_token_on_the_preferences_page_logs_no_reader_token(caplog):
    reader = SubscriberFactory.create()
    token = make_token(reader.pk, "preferences")
    with caplog.at_level(logging.INFO):
        response = Client(enforce_csrf_checks=True).post(f"/newsletter/preferences/{token}/erase/")
    assert response.status_code == 403
    logged = every_line(caplog)
    assert "Forbidden (CSRF cookie not set.): /newsletter/preferences/[token]/erase/" in logged
    assert token not in logged


@pytest.mark.django_db
def test_a_tampered_unsubscribe_or_confirm_link_logs_no_token(client, caplog):
    reader = SubscriberFactory.create()
    tampered = make_token(reader.pk, "unsubscribe")[:-3] + "xyz"
    confirm = make_token(reader.pk, "confirm")
    with caplog.at_level(logging.INFO):
        assert client.get(f"/newsletter/unsubscribe/{tampered}/").status_code == 400
        assert client.get(f"/newsletter/confirm/{confirm}/?utm_source=mail").status_code == 200
        assert client.post(f"/newsletter/confirm/{tampered}/").status_code == 400
    logged = every_line(caplog)
    assert "Bad Request: /newsletter/unsubscribe/[token]/" in logged
    assert tampered not in logged
    assert confirm not in logged


def test_gunicorns_access_log_shows_no_reader_token(transactional_db, tmp_path: Path):
    reader = SubscriberFactory.create()
    preferences = make_token(reader.pk, "preferences")
    unsubscribe = make_token(reader.pk, "unsubscribe")
    port = free_port()
    access_log = tmp_path / "access.log"
    env = os.environ | {"DATABASE_URL": database_url(connection.settings_dict), "PYTHONUNBUFFERED": "1"}
    web = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "euro_prospects.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--access-logfile", str(access_log),
            "--access-logformat", '%(h)s "%(r)s" %(s)s "%(f)s" %(U)s',
        ],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"

        def fetch(path: str, referer: str = "") -> int:
            headers = {"Referer": referer} if referer else {}
            request = urllib.request.Request(base + path, headers=headers)  # noqa: S310 (http on loopback)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http on loopback)
                    return int(response.status)
            except urllib.error.HTTPError as error:
                return error.code
            except OSError:
                return 0

        wait_until(lambda: fetch("/robots.txt") == 200, timeout=30)
        assert fetch(f"/newsletter/preferences/{preferences}/?from=mail") == 200
        assert fetch("/", referer=f"{base}/newsletter/unsubscribe/{unsubscribe}/") == 200
        wait_until(lambda: access_log.exists() and access_log.read_text().count("\n") >= 3)
    finally:
        web.terminate()
        web.wait(timeout=30)
    logged = access_log.read_text()
    assert "/newsletter/preferences/[token]/?from=mail" in logged
    assert "/newsletter/unsubscribe/[token]/" in logged
    assert preferences not in logged
    assert unsubscribe not in logged


@pytest.mark.django_db
def test_a_refused_address_is_logged_as_the_subscribers_id(smtp_server, caplog, monkeypatch):
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)
    article = ArticleFactory.create()
    gone = SubscriberFactory.create(email="gone.reader@example.org")
    smtp_server.handler.rcpt_faults[gone.email] = "550 5.1.1 <gone.reader@example.org>: No such user"
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    with caplog.at_level(logging.INFO, logger="newsletter"):
        while sending.send_batch(campaign_id=campaign.pk).claimed:
            pass
    gone.refresh_from_db()
    assert gone.status == Subscriber.Status.BOUNCED
    logged = every_line(caplog, logger="newsletter")  # not the test SMTP server's own log
    assert f"subscriber={gone.pk} 550 5.1.1 <[address]>: No such user" in logged
    assert "gone.reader" not in logged
