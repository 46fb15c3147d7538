import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from euro_prospects.settings import email_settings, envbool, envint


def run_django_setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "EMAIL_URL"}}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=base | {"DJANGO_SETTINGS_MODULE": "euro_prospects.settings"} | env,
        capture_output=True,
        text=True,
        check=False,
    )


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
    result = run_django_setup({"DEBUG": "false", "SECRET_KEY": "x" * 50, "EMAIL_URL": "console://"})
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is empty" in result.stderr


def test_production_starts_with_what_it_needs():
    result = run_django_setup(
        {"DEBUG": "false", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "example.org", "EMAIL_URL": "console://"}
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
