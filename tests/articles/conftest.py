"""Newsroom personas: Eva the editor, Cora the correspondent, Otto another correspondent."""

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from articles import services
from articles.models import Article, Author
from articles.roles import AUTHORS, EDITORS, ensure_groups
from tests.factories import AuthorFactory, TopicFactory, UserFactory


def member_of(group_name: str, **fields: Any) -> Any:
    ensure_groups()  # transactional tests flush the tables, groups included
    user = UserFactory.create(**fields)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def eva(db: None) -> Any:
    return member_of(EDITORS, username="eva", email="eva@example.org")


@pytest.fixture
def cora(db: None) -> Any:
    user = member_of(AUTHORS, username="cora", email="cora@example.org")
    AuthorFactory.create(name="Cora Lindqvist", slug="cora-lindqvist", user=user, role="Baltic Correspondent")
    return user


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
