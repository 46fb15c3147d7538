"""Newsroom personas beyond the shared Eva and Cora (tests/conftest.py): Otto, another correspondent."""

from pathlib import Path
from typing import Any

import pytest

from articles import services
from articles.models import Article, Author
from articles.roles import AUTHORS
from tests.conftest import member_of
from tests.factories import AuthorFactory, TopicFactory


@pytest.fixture
def otto(db: None) -> Any:
    user = member_of(AUTHORS, username="otto", email="otto@example.org")
    AuthorFactory.create(name="Otto Brandl", slug="otto-brandl", user=user)
    return user


@pytest.fixture
def coras_draft(cora: Any) -> Article:
    topic = TopicFactory.create(name="Energy", slug="energy")
    return services.create_draft(
        by=cora, title="Grid talks stall again", standfirst="A summary.", body="<p>Words.</p>", topics=[topic]
    )


def author_of(user: Any) -> Author:
    return Author.objects.get(user=user)


@pytest.fixture(autouse=True)
def media_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
