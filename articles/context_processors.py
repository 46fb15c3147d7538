from typing import Any

from django.db import connection
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from articles.cache import per_generation
from articles.links import Link, slug_url

NAV_TOPICS = 6


def site_navigation(request: HttpRequest) -> dict[str, Any]:
    """Topics for the header and footer; queried only if a template shows them."""
    return {"nav_topics": SimpleLazyObject(lambda: per_generation("nav-topics", load_nav_topics))}


def load_nav_topics() -> list[Link]:
    # In SQL, as plain links: on every page, and the ORM costs more than the query.
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, slug FROM articles_topic ORDER BY name LIMIT %s", [NAV_TOPICS])
        return [Link(name=name, url=slug_url("articles:topic", slug)) for name, slug in cursor.fetchall()]
