"""API personas: Eva the editor and Cora the correspondent (an Author), each with a token."""

from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from articles.roles import AUTHORS, EDITORS, ensure_groups
from tests.factories import AuthorFactory, UserFactory


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    # Only the limiter's keys: the same Redis database holds the Celery broker's.
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter("*ratelimit:*"))
    if keys:
        client.delete(*keys)


def member_of(group_name: str, **fields: Any) -> Any:
    ensure_groups()
    user = UserFactory.create(**fields)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def client_with_token(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def eva(db: None) -> Any:
    return member_of(EDITORS, username="eva", email="eva@example.org")


@pytest.fixture
def cora(db: None) -> Any:
    user = member_of(AUTHORS, username="cora", email="cora@example.org")
    AuthorFactory.create(name="Cora Lindqvist", slug="cora-lindqvist", user=user, role="Baltic Correspondent")
    return user


@pytest.fixture
def as_eva(eva: Any) -> APIClient:
    return client_with_token(eva)


@pytest.fixture
def as_cora(cora: Any) -> APIClient:
    return client_with_token(cora)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()
