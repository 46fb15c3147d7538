"""The project's URLs plus /bench/bytes/<n>/: n bytes from memory, the framework's ceiling."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from euro_prospects.urls import urlpatterns as project_urlpatterns

_BODIES: dict[int, bytes] = {}


def ceiling(request: HttpRequest, size: int) -> HttpResponse:
    body = _BODIES.get(size)
    if body is None:
        body = _BODIES[size] = (b"<!doctype html><p>" + b"x" * size)[:size]
    return HttpResponse(body, content_type="text/html; charset=utf-8")


urlpatterns = [path("bench/bytes/<int:size>/", ceiling), *project_urlpatterns]
