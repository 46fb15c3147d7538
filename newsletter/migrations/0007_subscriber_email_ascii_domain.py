"""Subscribers' addresses are stored with the domain in its ASCII (IDNA) form.

Rows stored with a Unicode domain (``leser@bücher.de``) become ``leser@xn--bcher-kva.de``.
Where both spellings of one address are on the list, they are one reader: the older
row is kept, takes a bounce or complaint the other had, and the other's deliveries to
campaigns the kept row did not get; then the other row is removed.
"""

from typing import Any

import idna
from django.db import migrations

SUPPRESSED = ("bounced", "complained")


def ascii_address(email: str) -> str | None:
    local, at, domain = email.rpartition("@")
    if not at or domain.isascii():
        return None
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii').lower()}"
    except (idna.IDNAError, UnicodeError):
        return None  # not valid IDNA: left as it is (sending records it as a failure)


def store_ascii_domains(apps: Any, schema_editor: Any) -> None:
    Subscriber = apps.get_model("newsletter", "Subscriber")
    Delivery = apps.get_model("newsletter", "Delivery")
    rows = Subscriber.objects.only("pk", "email").order_by("pk").iterator(chunk_size=2000)
    changes = [(row.pk, new) for row in rows if (new := ascii_address(row.email)) is not None]
    for pk, new in changes:
        subscriber = Subscriber.objects.get(pk=pk)
        twin = Subscriber.objects.filter(email__iexact=new).exclude(pk=pk).first()
        if twin is None:
            subscriber.email = new
            subscriber.save(update_fields=["email"])
            continue
        keep, other = (twin, subscriber) if twin.pk < subscriber.pk else (subscriber, twin)
        if other.status in SUPPRESSED and keep.status not in SUPPRESSED:
            keep.status = other.status
            keep.suppressed_at = other.suppressed_at
            keep.suppression_reason = other.suppression_reason
        keep_campaigns = Delivery.objects.filter(subscriber=keep).values("campaign_id")
        Delivery.objects.filter(subscriber=other).exclude(campaign_id__in=keep_campaigns).update(subscriber=keep)
        other.delete()
        keep.email = new
        keep.save(update_fields=["email", "status", "suppressed_at", "suppression_reason"])


class Migration(migrations.Migration):
    dependencies = [
        ("newsletter", "0006_processed_tracking_events"),
    ]

    operations = [
        migrations.RunPython(store_ascii_domains, migrations.RunPython.noop),
    ]
