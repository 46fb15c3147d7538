"""``manage.py drf_create_token USER``: a new API token for an account, printed once."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from api.tokens import create_api_token


class Command(BaseCommand):
    help = "Make a new API token for USER and print it (the only time it is shown). It expires after API_TOKEN_TTL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("-r", "--reset", action="store_true", help="Revoke the user's other tokens first.")

    def handle(self, *args: Any, username: str, reset: bool, **options: Any) -> None:
        user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"There is no user called {username!r}.")
        if not user.is_active:
            raise CommandError(f"The account {username!r} is deactivated.")
        if reset:
            user.auth_token_set.all().delete()  # type: ignore[attr-defined]
        token, key = create_api_token(user=user)
        expiry = timezone.localtime(token.expiry).strftime("%Y-%m-%d %H:%M %Z")
        # One line, the key third: `awk '{print $3}'` picks it out, as with DRF's command.
        self.stdout.write(f"Generated token {key} for user {username} (expires {expiry})")
