"""Celery tasks of the newsletter app. Each takes ids, re-reads its rows and
exits early when there is nothing (left) to do."""

from __future__ import annotations

from celery import shared_task

from newsletter import emails
from newsletter.models import Subscriber
from newsletter.services import export_subscriber_data


@shared_task
def send_confirmation_email(subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id, status=Subscriber.Status.PENDING).first()
    if subscriber is not None:
        emails.send_confirmation(subscriber)


@shared_task
def send_confirmation_emails(subscriber_ids: list[int]) -> None:
    """Confirmation emails for a batch of imported subscribers, over one connection."""
    for subscriber in Subscriber.objects.filter(pk__in=subscriber_ids, status=Subscriber.Status.PENDING):
        emails.send_confirmation(subscriber)


@shared_task
def send_welcome_email(subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id, status=Subscriber.Status.CONFIRMED).first()
    if subscriber is not None:
        emails.send_welcome(subscriber)


@shared_task
def send_manage_link_email(subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is not None:
        emails.send_manage_link(subscriber)


@shared_task
def send_data_export(subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is not None:
        emails.send_data_export(subscriber, export_subscriber_data(subscriber=subscriber))
