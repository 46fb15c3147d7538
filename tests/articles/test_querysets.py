"""Reads on articles' QuerySets."""

from datetime import timedelta

from django.utils import timezone

from articles.models import Article
from tests.support.factories import ArticleFactory


def test_published_leaves_out_drafts_and_future_dates(db):
    live = ArticleFactory.create()
    ArticleFactory.create(status=Article.Status.DRAFT, published_at=None)
    ArticleFactory.create(published_at=timezone.now() + timedelta(hours=1))
    assert list(Article.objects.published()) == [live]
