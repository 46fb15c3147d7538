from django.apps import AppConfig


class NewsletterConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "newsletter"

    def ready(self) -> None:
        # The newsletter's receiver for articles.signals.article_published is
        # connected here (the sending-engine issue adds it).
        pass
