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


@pytest.fixture
def private_redis() -> Any:
    """A Redis server of this test's own (a cache apart from the broker's Redis)."""
    import shutil
    import subprocess

    from tests.conftest import wait_until
    from tests.smtp import free_port

    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    ping = ["redis-cli", "-p", str(port), "ping"]
    wait_until(lambda: subprocess.run(ping, capture_output=True).returncode == 0)

    class PrivateRedis:
        url = f"redis://127.0.0.1:{port}/0"

    try:
        yield PrivateRedis()
    finally:
        process.kill()
        process.wait()
