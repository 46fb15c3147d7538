"""Celery task names are an interface: queued messages and the beat schedule name them."""

from django.conf import settings

from euro_prospects.celery import app

# Every task a queued message or the beat schedule may name; renaming one strands its messages.
TASK_NAMES = {
    "articles.tasks.notify_contributors_of_step",
    "articles.tasks.notify_editors_of_submission",
    "articles.tasks.publish_due_articles",
    "articles.tasks.send_submission_acknowledgement",
    "newsletter.engagement.tasks.flush_engagement_events",
    "newsletter.engagement.tasks.roll_up_engagement",
    "newsletter.tasks.compact_ledger",
    "newsletter.tasks.import_subscribers_file",
    "newsletter.tasks.recover_campaigns",
    "newsletter.tasks.send_campaign_batch",
    "newsletter.tasks.send_confirmation_email",
    "newsletter.tasks.send_confirmation_emails",
    "newsletter.tasks.send_data_export",
    "newsletter.tasks.send_due_digests",
    "newsletter.tasks.send_manage_link_email",
    "newsletter.tasks.send_welcome_email",
    "newsletter.tasks.start_campaign",
}


def test_every_task_keeps_the_name_queued_messages_use():
    app.loader.import_default_modules()
    assert set(app.tasks) >= TASK_NAMES


def test_the_beat_schedule_names_only_registered_tasks():
    app.loader.import_default_modules()
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} <= set(app.tasks)
