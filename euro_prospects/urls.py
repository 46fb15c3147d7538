from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path

from articles.cache import cache_public_page
from articles.sitemaps import SITEMAPS
from articles.views import favicon, robots_txt
from euro_prospects.health import healthz
from euro_prospects.metrics import metrics_view

urlpatterns = [
    path(f"{settings.ADMIN_URL}two-factor/", include("euro_prospects.twofactor")),
    path(settings.ADMIN_URL, admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path(settings.METRICS_PATH, metrics_view, name="metrics"),
    path("newsletter/", include("newsletter.urls")),
    path("r/", include("newsletter.engagement.urls")),  # tracked links in campaign emails
    path("api/", include("api.urls")),
    path("sitemap.xml", cache_public_page(sitemap, query_params=("p",)), {"sitemaps": SITEMAPS}, name="sitemap"),
    path("robots.txt", robots_txt, name="robots"),
    path("favicon.ico", favicon, name="favicon"),
    path("", include("articles.urls")),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
