"""scripts/with-redis.sh: `make run` and `make test` start a private Redis when none answers."""

import os
import subprocess
import sys

import pytest
import redis

from tests.support.smtp import free_port
from tests.support.workers import ROOT

pytestmark = pytest.mark.integration

PING = "import os, redis; print(redis.Redis.from_url(os.environ['REDIS_URL']).ping())"


def test_a_command_gets_a_private_redis_on_the_port_where_nothing_answered():
    url = f"redis://127.0.0.1:{free_port()}/3"
    env = os.environ | {"REDIS_URL": url, "PYTHON": sys.executable}

    run = subprocess.run(
        ["bash", "scripts/with-redis.sh", sys.executable, "-c", PING],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    assert "Starting a private Redis" in run.stdout
    assert run.stdout.rstrip().endswith("True")
    with pytest.raises(redis.ConnectionError):  # stopped again once the command is done
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()


def test_the_command_s_failure_is_the_script_s_failure():
    url = f"redis://127.0.0.1:{free_port()}/3"
    env = os.environ | {"REDIS_URL": url, "PYTHON": sys.executable}
    run = subprocess.run(
        ["bash", "scripts/with-redis.sh", sys.executable, "-c", "raise SystemExit(3)"],
        cwd=ROOT, env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 3
