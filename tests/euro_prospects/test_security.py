"""Production settings, response headers, CSRF, safe redirects and login lockout."""

import os
import secrets
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from euro_prospects.security import safe_next_url
from tests.support.factories import ArticleFactory, UserFactory

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "news.example",
    "EMAIL_URL": "smtp://mail.example:587",
    "SITE_URL": "https://news.example",
    "TRUST_X_FORWARDED_PROTO": "true",
}


def test_production_configuration_passes_check_deploy():
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "SESSION_", "CSRF_")) and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env | PRODUCTION_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_complains_when_https_settings_are_turned_off():
    env = os.environ | PRODUCTION_ENV | {"SECURE_SSL_REDIRECT": "false", "SECURE_HSTS_SECONDS": "0"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "security.W004" in result.stderr
    assert "security.W008" in result.stderr


def assert_security_headers(response):
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_home_page_sends_security_headers(client, db):
    response = client.get("/")
    assert response.status_code == 200
    assert_security_headers(response)


def test_article_page_sends_security_headers(client, db):
    article = ArticleFactory.create()
    response = client.get(f"/articles/{article.slug}/")
    assert response.status_code == 200
    assert_security_headers(response)


def test_admin_login_page_sends_security_headers(client, db):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert_security_headers(response)


def test_api_root_sends_security_headers(client, db):
    response = client.get("/api/v1/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert_security_headers(response)


def test_pages_carry_no_inline_scripts_or_styles(client, db):
    article = ArticleFactory.create()
    public = ["/", f"/articles/{article.slug}/", "/admin/login/"]
    client.force_login(UserFactory.create(is_superuser=True))
    for url in [*public, "/admin/", "/admin/auth/user/add/", "/admin/auth/group/"]:
        html = client.get(url).content.decode()
        assert "<style" not in html, url
        assert ' style="' not in html, url
        for chunk in html.split("<script")[1:]:
            tag = chunk.split(">", 1)[0]
            assert "src=" in tag or "application/ld+json" in tag or "nonce=" in tag, (url, tag)


# CSRF ------------------------------------------------------------------------------

# Views that may skip CSRF, by URL prefix: the RFC 8058 one-click unsubscribe
# (mail clients POST it without a token), the token-authenticated API (DRF
# enforces CSRF itself for session users), provider webhooks (signed), metrics (GET only).
CSRF_EXEMPT_ALLOWED = (
    "newsletter/unsubscribe/",
    "newsletter/subscribe/",  # double opt-in sign-up box on cached pages
    "api/",
    "newsletter/webhooks/",
    "metrics",
)


def walk(resolver: URLResolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def test_only_the_allowed_views_skip_csrf_protection():
    exempt = [route for route, view in walk(get_resolver()) if getattr(view, "csrf_exempt", False)]
    unexpected = [route for route in exempt if not route.startswith(CSRF_EXEMPT_ALLOWED)]
    assert unexpected == []


def test_admin_login_refuses_a_post_without_csrf_token(db):
    user = UserFactory.create(username="ada")
    user.set_password("correct horse battery")
    user.save()
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "ada", "password": "correct horse battery"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_two_factor_form_refuses_a_post_without_csrf_token(db, settings):
    settings.REQUIRE_STAFF_2FA = True
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory.create(is_superuser=True))
    response = client.post(reverse("two_factor:setup"), {"code": "123456"})
    assert response.status_code == 403


# Safe redirects ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/path", "javascript:alert(1)", "http://testserver.evil/", "\\\\evil"],
)
def test_safe_next_url_refuses_other_hosts(target):
    request = RequestFactory().get("/", {"next": target}, HTTP_HOST="testserver")
    assert safe_next_url(request, "/fallback/") == "/fallback/"


def test_safe_next_url_accepts_a_path_on_this_site():
    request = RequestFactory().post("/", {"next": "/admin/articles/"}, HTTP_HOST="testserver")
    assert safe_next_url(request, "/fallback/") == "/admin/articles/"


def test_admin_login_does_not_redirect_to_another_host(client, db):
    user = UserFactory.create(username="grace")
    user.set_password("correct horse battery")
    user.save()
    response = client.post(
        "/admin/login/?next=https://evil.example/",
        {"username": "grace", "password": "correct horse battery", "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]


def test_two_factor_page_does_not_redirect_to_another_host(client, db, settings):
    import django_otp.oath
    from django_otp.plugins.otp_totp.models import TOTPDevice

    settings.REQUIRE_STAFF_2FA = True
    user = UserFactory.create(is_superuser=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    code = django_otp.oath.totp(device.bin_key)
    response = client.post(reverse("two_factor:verify"), {"code": f"{code:06d}", "next": "//evil.example/"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


# Lockout -----------------------------------------------------------------------------


def test_admin_login_locks_out_after_repeated_failures(client, db, settings):
    user = UserFactory.create(username="editor-one")
    user.set_password("the right password")
    user.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "editor-one", "password": "a wrong guess"})
    response = client.post("/admin/login/", {"username": "editor-one", "password": "the right password"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_user_so_others_can_still_sign_in(client, db, settings):
    other = UserFactory.create(username="editor-two")
    other.set_password("the other password")
    other.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "editor-one", "password": "a wrong guess"})
    response = client.post("/admin/login/", {"username": "editor-two", "password": "the other password"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(get_user_model().objects.get(username="editor-two").pk)
