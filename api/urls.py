from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from api import tokens, views

router = DefaultRouter()
router.register("articles", views.ArticleViewSet, basename="article")
router.register("topics", views.TopicViewSet, basename="topic")
router.register("authors", views.AuthorViewSet, basename="author")
router.register("campaigns", views.CampaignViewSet, basename="campaign")

app_name = "api"

urlpatterns = [
    path("v1/subscribers/", views.subscribe, name="subscribe"),
    path("v1/tokens/", tokens.TokenList.as_view(), name="tokens"),
    re_path(rf"^v1/tokens/(?P<token_id>{tokens.KEY_START_PATTERN})/$", tokens.TokenDetail.as_view(), name="token"),
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="api/swagger_ui.html"),
        name="docs",
    ),
    re_path(r"^", views.not_found),
]
