"""The newsroom's people, as tests make them."""

from typing import Any

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken
from rest_framework.test import APIClient

from articles.models import Author


def member_of(group_name: str, **fields: Any) -> Any:
    from django.contrib.auth.models import Group

    from articles.roles import ensure_groups
    from newsletter.roles import grant_editor_permissions
    from tests.support.factories import UserFactory

    # Transactional tests flush the tables, groups included; the migrations filled them.
    ensure_groups()
    grant_editor_permissions()
    user = UserFactory.create(**fields)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def author_of(user: Any) -> Author:
    return Author.objects.get(user=user)


def client_with_token(user: Any) -> APIClient:
    client = APIClient()
    _, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def code_for(device: TOTPDevice, offset: int = 0) -> str:
    """The code the person's authenticator app shows now (``offset`` steps ago)."""
    return f"{totp(device.bin_key, t0=device.t0 - offset * device.step):06d}"
