"""API personas: Eva the editor and Cora the correspondent (an Author), each with a token."""

from typing import Any

import pytest
import redis
from django.conf import settings
from knox.models import AuthToken
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    # Only the limiter's keys: the same Redis database holds the Celery broker's.
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter("*ratelimit:*"))
    if keys:
        client.delete(*keys)


def client_with_token(user: Any) -> APIClient:
    client = APIClient()
    _, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def as_eva(eva: Any) -> APIClient:
    return client_with_token(eva)


@pytest.fixture
def as_cora(cora: Any) -> APIClient:
    return client_with_token(cora)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()
