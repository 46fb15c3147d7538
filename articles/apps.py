from django.apps import AppConfig


class ArticlesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "articles"

    def ready(self) -> None:
        from articles import receivers  # noqa: F401  (connects the cache invalidation receivers)
