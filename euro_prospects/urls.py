from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.core.exceptions import ImproperlyConfigured
from django.urls import Resolver404, include, path, resolve

from articles.cache import cache_public_page
from articles.sitemaps import SITEMAPS
from articles.views import favicon, robots_txt
from euro_prospects.health import healthz
from euro_prospects.metrics import metrics_view


def refuse_public_paths(admin_url: str, metrics_path: str) -> None:
    """ImproperlyConfigured when the admin or the metrics would sit on a public page's path.

    The public site's patterns come first (below), so such an admin would be unreachable.
    """
    for setting, probe in (
        ("ADMIN_URL", admin_url),
        ("ADMIN_URL", f"{admin_url}login/"),
        ("METRICS_PATH", metrics_path),
    ):
        try:
            match = resolve(f"/{probe}", "articles.urls")
        except Resolver404:
            continue
        raise ImproperlyConfigured(
            f"{setting} {probe!r} is the path of a public page ({match.url_name}); choose another"
        )


refuse_public_paths(settings.ADMIN_URL, settings.METRICS_PATH)

# The public site first: its pages take nearly every request, and Django tries the
# patterns in order.
urlpatterns = [
    path("", include("articles.urls")),
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
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
