"""Reading settings from the environment: tiny helpers that fail loudly on a bad value,
and the checks that keep a public example value out of production."""

import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of true/false/1/0/yes/no/on/off, got {value!r}")


def envint(name: str, default: str, *, minimum: int | None = None, unit: str = "") -> int:
    """A whole number; with ``minimum``, one below it stops start-up (``unit`` names what it counts)."""
    value = os.getenv(name, default).strip()
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None
    return at_least(name, number, minimum, unit)


def envfloat(name: str, default: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    value = os.getenv(name, default).strip()
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum:g}, got {number:g}")
    return at_least(name, number, minimum)


def at_least(name: str, number: Any, minimum: Any, unit: str = "") -> Any:
    if minimum is not None and number < minimum:
        what = f"{minimum} {unit}".strip()
        raise ImproperlyConfigured(f"{name} must be {what} or more, got {number}")
    return number


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


_PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "insecure", "django-insecure"}
_EXAMPLE_ENV_FILE = BASE_DIR / "deploy" / "euro-prospects.env.example"
MAKE_A_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"


def example_values(name: str) -> set[str]:
    """The values the shipped example env file gives ``name``: copied unchanged, they are public."""
    values = {"replace-with-50-random-characters"} if name == "SECRET_KEY" else set()
    try:
        lines = _EXAMPLE_ENV_FILE.read_text().splitlines()
    except OSError:
        return values
    for line in lines:
        key, _, value = line.strip().lstrip("#").strip().partition("=")
        if key == name and value:
            values.add(value.strip().strip("\"'"))
    return values


def production_secret_key_problem(key: str) -> str | None:
    """Why ``key`` must not sign anything in production (the rules of Django's check --deploy), or None."""
    if key.strip().lower() in _PLACEHOLDER_SECRETS or key.startswith("django-insecure"):
        return "is missing or a placeholder"
    if key in example_values("SECRET_KEY"):
        return f"is the example value from {_EXAMPLE_ENV_FILE.relative_to(BASE_DIR)}, which anyone can read"
    if len(key) < 50:
        return f"is {len(key)} characters long; it needs at least 50"
    if len(set(key)) < 5:
        return f"has {len(set(key))} distinct characters; it needs at least 5"
    return None


def secret_key(*, debug: bool) -> str:
    """SECRET_KEY: a fixed key in development; in production (DEBUG off) a missing, short
    or published key stops start-up, since whoever knows it can forge readers' links."""
    key = os.getenv("SECRET_KEY", "")
    if debug and not key:
        return "django-insecure-development-only-key-do-not-use-in-production"
    if not debug and (problem := production_secret_key_problem(key)):
        raise ImproperlyConfigured(
            f"SECRET_KEY {problem}. With DEBUG off, set SECRET_KEY to a long random string, e.g. {MAKE_A_KEY}"
        )
    return key
