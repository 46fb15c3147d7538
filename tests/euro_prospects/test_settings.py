import os
import re
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from euro_prospects.email_url import email_settings
from euro_prospects.env import envbool, envint
from tests.support.workers import run_django_setup

# 60 characters, many different ones: what `secrets.token_urlsafe(45)` makes.
GOOD_KEY = "k3Jx9QvN2mZ7rT1yL8wB5cH0dF6gP4sA-uE_oI3nW9qR2tY7vX1zM5bK8jC0"
PRODUCTION = {"DEBUG": "false", "ALLOWED_HOSTS": "example.org", "EMAIL_URL": "console://"}


def test_it_rejects_a_malformed_boolean(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "perhaps")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        envbool("SOME_FLAG", "false")


def test_it_rejects_a_malformed_number(monkeypatch):
    monkeypatch.setenv("SOME_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER must be a whole number"):
        envint("SOME_NUMBER", "1")


def test_production_refuses_a_missing_secret_key():
    result = run_django_setup({"DEBUG": "false", "ALLOWED_HOSTS": "example.org", "EMAIL_URL": "console://"})
    assert result.returncode != 0
    assert "SECRET_KEY is missing or a placeholder" in result.stderr


def test_production_refuses_a_placeholder_secret_key():
    result = run_django_setup(
        {"DEBUG": "false", "SECRET_KEY": "change-me", "ALLOWED_HOSTS": "example.org", "EMAIL_URL": "console://"}
    )
    assert "SECRET_KEY is missing or a placeholder" in result.stderr


def test_production_refuses_empty_allowed_hosts():
    result = run_django_setup({"DEBUG": "false", "SECRET_KEY": GOOD_KEY, "EMAIL_URL": "console://"})
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is empty" in result.stderr


def test_production_starts_with_what_it_needs():
    result = run_django_setup(
        {"DEBUG": "false", "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "example.org", "EMAIL_URL": "console://"}
    )
    assert result.returncode == 0, result.stderr


def test_email_url_selects_smtp_with_credentials():
    config = email_settings("smtp+tls://user%40site:p%2Fw@mail.example:587")
    assert config["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert config["EMAIL_HOST"] == "mail.example"
    assert config["EMAIL_PORT"] == 587
    assert config["EMAIL_HOST_USER"] == "user@site"
    assert config["EMAIL_HOST_PASSWORD"] == "p/w"
    assert config["EMAIL_USE_TLS"] is True


def test_email_url_selects_console_and_file_backends():
    assert email_settings("console://")["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    file_config = email_settings("file:///srv/mail")
    assert file_config["EMAIL_FILE_PATH"] == "/srv/mail"


def test_email_url_rejects_an_unknown_scheme():
    with pytest.raises(ImproperlyConfigured, match="scheme 'carrier-pigeon'"):
        email_settings("carrier-pigeon://loft")


def test_production_refuses_the_secret_key_of_the_example_env_file():
    result = run_django_setup(PRODUCTION | {"SECRET_KEY": "replace-with-50-random-characters"})
    assert result.returncode != 0
    assert "SECRET_KEY is the example value from deploy/euro-prospects.env.example" in result.stderr


def test_production_refuses_a_secret_key_shorter_than_50_characters():
    result = run_django_setup(PRODUCTION | {"SECRET_KEY": GOOD_KEY[:49]})
    assert result.returncode != 0
    assert "SECRET_KEY is 49 characters long; it needs at least 50" in result.stderr


def test_production_refuses_a_long_secret_key_of_few_distinct_characters():
    result = run_django_setup(PRODUCTION | {"SECRET_KEY": "abcd" * 20})
    assert result.returncode != 0
    assert "SECRET_KEY has 4 distinct characters; it needs at least 5" in result.stderr


def test_production_refuses_the_metrics_token_of_the_example_env_file():
    result = run_django_setup(
        PRODUCTION | {"SECRET_KEY": GOOD_KEY, "METRICS_TOKEN": "replace-with-another-random-string"}
    )
    assert result.returncode != 0
    assert "METRICS_TOKEN is the example value" in result.stderr


def test_development_accepts_any_secret_key():
    result = run_django_setup({"DEBUG": "true", "SECRET_KEY": "short"})
    assert result.returncode == 0, result.stderr


def test_cache_redis_url_defaults_to_redis_url_and_can_be_set_apart():
    show = "from django.conf import settings; print(settings.CACHES['default']['LOCATION'])"
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "euro_prospects.settings", "REDIS_URL": "redis://127.0.0.1:6379/3"}
    env.pop("CACHE_REDIS_URL", None)
    same = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True)
    assert same.stdout.strip() == "redis://127.0.0.1:6379/3"
    env["CACHE_REDIS_URL"] = "redis://127.0.0.1:6380/0"
    apart = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True)
    assert apart.stdout.strip() == "redis://127.0.0.1:6380/0"


@pytest.mark.parametrize(
    ("admin_url", "metrics_path", "message"),
    [
        ("search/", "metrics", "ADMIN_URL 'search/' is the path of a public URL (search)"),
        ("topics/", "metrics", "ADMIN_URL 'topics/login/' is the path of a public URL (topic)"),
        ("r/", "metrics", "ADMIN_URL 'r/login/' is the path of a public URL (tracked_link)"),
        ("office/", "", "METRICS_PATH '' is the path of a public URL (home)"),
    ],
)
def test_the_admin_and_the_metrics_cannot_sit_on_a_public_url(admin_url, metrics_path, message):
    # The public pages are resolved first, so such an admin or metrics URL could never be reached.
    from euro_prospects.urls import refuse_public_paths

    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        refuse_public_paths(admin_url, metrics_path)


def test_an_admin_and_metrics_path_of_their_own_are_accepted():
    from euro_prospects.urls import refuse_public_paths

    refuse_public_paths("admin/", "metrics")
    refuse_public_paths("office/", "internal/metrics")
