from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.core.exceptions import ImproperlyConfigured
from django.urls import Resolver404, URLResolver, include, path
from django.urls.resolvers import RegexPattern

from articles.cache import cache_public_page
from articles.sitemaps import SITEMAPS
from articles.views import favicon, robots_txt
from euro_prospects.health import healthz
from euro_prospects.metrics import metrics_view

# Resolved first, as they take nearly every request: the public pages, and the tracked links
# of campaign emails (a send's readers clicking). Django tries the patterns in order.
PUBLIC = [
    path("r/", include("newsletter.engagement.urls")),
    path("", include("articles.urls")),
]


def refuse_public_paths(admin_url: str, metrics_path: str) -> None:
    """ImproperlyConfigured when the admin or the metrics would sit on a public URL's path.

    The public patterns come first (below), so such an admin would be unreachable.
    """
    public = URLResolver(RegexPattern(r"^/"), PUBLIC)
    for setting, probe in (
        ("ADMIN_URL", admin_url),
        ("ADMIN_URL", f"{admin_url}login/"),
        ("METRICS_PATH", metrics_path),
    ):
        try:
            match = public.resolve(f"/{probe}")
        except Resolver404:
            continue
        raise ImproperlyConfigured(
            f"{setting} {probe!r} is the path of a public URL ({match.url_name}); choose another"
        )


refuse_public_paths(settings.ADMIN_URL, settings.METRICS_PATH)

urlpatterns = [
    *PUBLIC,
    path(f"{settings.ADMIN_URL}two-factor/", include("euro_prospects.twofactor")),
    path(settings.ADMIN_URL, admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path(settings.METRICS_PATH, metrics_view, name="metrics"),
    path("newsletter/", include("newsletter.urls")),
    path("api/", include("api.urls")),
    path("sitemap.xml", cache_public_page(sitemap, query_params=("p",)), {"sitemaps": SITEMAPS}, name="sitemap"),
    path("robots.txt", robots_txt, name="robots"),
    path("favicon.ico", favicon, name="favicon"),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
