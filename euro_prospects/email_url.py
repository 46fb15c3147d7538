"""``EMAIL_URL``: one variable for the whole mail set-up, read into Django's ``EMAIL_*`` settings."""

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def email_settings(url: str) -> dict[str, object]:
    """Turn EMAIL_URL into Django's EMAIL_* settings.

    smtp://user:pass@host:port, smtp+tls://… (STARTTLS), smtps://… (implicit TLS),
    console://, file:///path/to/dir, memory://, or anymail://ESP (the ESP's own
    settings then come from ANYMAIL_* variables).
    """
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if scheme == "memory":
        return {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    if scheme == "file":
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": parts.path or str(BASE_DIR / "var" / "mail"),
        }
    if scheme in {"smtp", "smtp+tls", "smtps"}:
        if not parts.hostname:
            raise ImproperlyConfigured(f"EMAIL_URL {url!r} names no host")
        try:
            port = parts.port or (465 if scheme == "smtps" else 25)
        except ValueError:
            raise ImproperlyConfigured(f"EMAIL_URL {url!r} has a bad port") from None
        query = parse_qs(parts.query)
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": parts.hostname,
            "EMAIL_PORT": port,
            "EMAIL_HOST_USER": unquote(parts.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_TLS": scheme == "smtp+tls",
            "EMAIL_USE_SSL": scheme == "smtps",
            "EMAIL_TIMEOUT": int(query.get("timeout", ["30"])[0]),
        }
    if scheme == "anymail":
        esp = parts.netloc or parts.path.strip("/")
        if not esp:
            raise ImproperlyConfigured("EMAIL_URL anymail://ESP must name the ESP, e.g. anymail://postmark")
        return {"EMAIL_BACKEND": f"anymail.backends.{esp}.EmailBackend"}
    raise ImproperlyConfigured(
        f"EMAIL_URL scheme {scheme!r} is not supported; use smtp, smtp+tls, smtps, console, file, memory or anymail"
    )
