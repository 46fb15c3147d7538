from django.urls import path

from articles import private_views, views
from articles.cache import cache_public_page
from articles.feeds import LatestArticlesAtomFeed, LatestArticlesFeed

app_name = "articles"

urlpatterns = [
    path("", views.home, name="home"),
    path("articles/<slug:slug>/", views.article_detail, name="detail"),
    path("topics/<slug:slug>/", views.topic_detail, name="topic"),
    path("authors/<slug:slug>/", views.author_detail, name="author"),
    path("articles/<slug:slug>/preview/", views.article_preview, name="preview"),
    path("write/", views.write, name="write"),
    path("write/thanks/", views.write_thanks, name="write_thanks"),
    path("write/status/<str:token>/", private_views.contributor_status, name="contributor_status"),
    path("preview/<str:token>/", private_views.shared_preview, name="shared_preview"),
    path("search/", views.search_results, name="search"),
    path("feed/", cache_public_page(LatestArticlesFeed(), query_params=()), name="feed"),
    path("feed/atom/", cache_public_page(LatestArticlesAtomFeed(), query_params=()), name="feed-atom"),
]
