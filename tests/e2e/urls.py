"""The project's URLs plus uploaded media, which the live test server must serve too."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from django.views.static import serve

from euro_prospects.urls import urlpatterns as project_urlpatterns


def media(request: HttpRequest, path: str) -> HttpResponse:
    return serve(request, path, document_root=str(settings.MEDIA_ROOT))  # type: ignore[return-value]


urlpatterns = [re_path(r"^media/(?P<path>.*)$", media), *project_urlpatterns]
