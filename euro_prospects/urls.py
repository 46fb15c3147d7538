from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from euro_prospects.health import healthz
from euro_prospects.metrics import metrics_view

urlpatterns = [
    path(f"{settings.ADMIN_URL}two-factor/", include("euro_prospects.twofactor")),
    path(settings.ADMIN_URL, admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path(settings.METRICS_PATH, metrics_view, name="metrics"),
    path("newsletter/", include("newsletter.urls")),
    path("api/", include("api.urls")),
    path("", include("articles.urls")),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
