"""Start the digests whose send time has come, or with ``--now`` the current period's at once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from newsletter.digests import start_due_digests
from newsletter.models import Campaign


class Command(BaseCommand):
    help = (
        "Build and start the due daily and weekly digests (beat does this on schedule). "
        "Running it again starts nothing new."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cadence", choices=list(Campaign.Digest.values), help="Only this digest.")
        parser.add_argument(
            "--now",
            action="store_true",
            help="Send the current period's digest at once, with what is published so far.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = start_due_digests(digest=options["cadence"], at_once=options["now"])
        if not started:
            self.stdout.write("No digest to start: each due digest has already been started.")
        for campaign in started:
            if campaign.status == Campaign.Status.SENDING:
                self.stdout.write(f"Started {campaign}: {campaign.recipients} readers.")
            else:
                self.stdout.write(f"{campaign}: nothing to send (no reader is owed a piece).")
