"""Cache invalidation: the one kind of side effect we hang on model signals.

Whatever the public pages show changes → after commit, the page cache
generation moves on (articles/cache.py). Nothing else belongs here.
"""

from django.db.models.signals import m2m_changed, post_delete, post_save

from articles.cache import bump_generation_on_commit
from articles.models import Article, ArticleAuthor, ArticleTopic, Author, Correction, SiteSettings, Topic

for model in (Article, ArticleAuthor, ArticleTopic, Author, Topic, SiteSettings, Correction):
    post_save.connect(bump_generation_on_commit, sender=model, dispatch_uid=f"public-pages-save-{model.__name__}")
    post_delete.connect(bump_generation_on_commit, sender=model, dispatch_uid=f"public-pages-delete-{model.__name__}")
for through in (Article.authors.through, Article.topics.through):
    m2m_changed.connect(bump_generation_on_commit, sender=through, dispatch_uid=f"public-pages-m2m-{through.__name__}")
