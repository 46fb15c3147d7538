from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from articles.cache import per_generation
from articles.models import Topic

NAV_TOPICS = 6


def site_navigation(request: HttpRequest) -> dict[str, Any]:
    """Topics for the header and footer; queried only if a template shows them."""
    return {"nav_topics": SimpleLazyObject(lambda: per_generation("nav-topics", load_nav_topics))}


def load_nav_topics() -> list[Topic]:
    # In SQL: on every page, and the ORM's query compiler costs more than the query.
    return list(Topic.objects.raw("SELECT id, name, slug FROM articles_topic ORDER BY name LIMIT %s", [NAV_TOPICS]))
