from django.apps import AppConfig


class NewsletterConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "newsletter"

    def ready(self) -> None:
        # The newsletter's receiver for articles.signals.article_published is
        # connected here (the sending-engine issue adds it).
        # Bounces and complaints arrive through django-anymail's tracking signal.
        from anymail.signals import tracking

        from newsletter.webhooks import handle_tracking_event

        tracking.connect(handle_tracking_event, dispatch_uid="newsletter.handle_tracking_event")
