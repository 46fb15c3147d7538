from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from articles.models import Topic

NAV_TOPICS = 6


def site_navigation(request: HttpRequest) -> dict[str, Any]:
    """Topics for the header and footer; queried only if a template shows them."""
    return {"nav_topics": SimpleLazyObject(lambda: list(Topic.objects.only("name", "slug")[:NAV_TOPICS]))}
