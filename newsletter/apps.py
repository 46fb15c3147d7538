from typing import Any

from django.apps import AppConfig


def start_campaign_on_publish(sender: Any, article_id: int, **kwargs: Any) -> None:
    """Record the campaign and enqueue its planning: the publish request stays the same
    size whatever the list size, and never fails because the broker is down."""
    from newsletter.sending import campaign_on_publish

    campaign_on_publish(article_id=article_id)


def recover_when_worker_starts(sender: Any = None, **kwargs: Any) -> None:
    """A worker that starts picks up campaigns a dead worker left behind."""
    from newsletter.tasks import recover_campaigns

    recover_campaigns.apply_async(countdown=1)


class NewsletterConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "newsletter"

    def ready(self) -> None:
        from anymail.signals import tracking
        from celery.signals import worker_ready

        from articles.signals import article_published
        from newsletter.webhooks import handle_tracking_event

        # Bounces and complaints arrive through django-anymail's tracking signal.
        tracking.connect(handle_tracking_event, dispatch_uid="newsletter.handle_tracking_event")

        article_published.connect(start_campaign_on_publish, dispatch_uid="newsletter.start_campaign_on_publish")
        worker_ready.connect(recover_when_worker_starts, dispatch_uid="newsletter.recover_when_worker_starts")
