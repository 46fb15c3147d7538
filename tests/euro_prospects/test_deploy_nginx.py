"""The nginx configuration in deploy/ logs no reader's token (run with the real nginx)."""

import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.support.smtp import free_port
from tests.support.workers import ROOT, wait_until

SHIPPED = ROOT / "deploy" / "nginx" / "euro-prospects.conf"
TOKEN = "MTIzNA:1uTqZk:Xb3rLq9vK2mW7yR1tN8cH0dF6gP4sA-uE_oI3nW9qR2"


def logging_part_of_the_shipped_config() -> str:
    """The maps and log_format of deploy/nginx/euro-prospects.conf (what comes before the upstream)."""
    text = SHIPPED.read_text()
    return text[: text.index("upstream euro_prospects")]


@pytest.fixture
def nginx(tmp_path: Path):
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.skip("nginx is not installed (apt-get install nginx)")
    port = free_port()
    temp = {name: tmp_path / name for name in ("client", "proxy", "fastcgi", "uwsgi", "scgi")}
    config = tmp_path / "nginx.conf"
    config.write_text(
        f"""
        daemon off;
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log;
        events {{}}
        http {{
            client_body_temp_path {temp["client"]};
            proxy_temp_path {temp["proxy"]};
            fastcgi_temp_path {temp["fastcgi"]};
            uwsgi_temp_path {temp["uwsgi"]};
            scgi_temp_path {temp["scgi"]};
            {logging_part_of_the_shipped_config()}
            server {{
                listen 127.0.0.1:{port};
                access_log {tmp_path}/access.log euro_prospects;
                location / {{ return 200 "ok"; }}
            }}
        }}
        """
    )
    process = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"nginx did not start: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            with urllib.request.urlopen(base + "/", timeout=2):  # noqa: S310 (http on loopback)
                return True
        except OSError:
            return False

    wait_until(answers, timeout=15)
    try:
        yield base, tmp_path / "access.log"
    finally:
        process.terminate()
        process.wait(timeout=15)


def get(url: str, referer: str = "") -> None:
    headers = {"Referer": referer} if referer else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http on loopback)
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310 (http on loopback)
        pass


def test_the_shipped_access_log_format_replaces_readers_tokens(nginx):
    base, access_log = nginx
    get(f"{base}/newsletter/preferences/{TOKEN}/")
    get(f"{base}/newsletter/unsubscribe/{TOKEN}/?List-Unsubscribe=One-Click")
    get(f"{base}/newsletter/confirm/{TOKEN}")
    get(f"{base}/articles/a-piece/", referer=f"https://news.example.org/newsletter/preferences/{TOKEN}/erase/")
    get(f"{base}/newsletter/subscribe/?page=2")
    wait_until(lambda: access_log.exists() and access_log.read_text().count("\n") >= 6)
    logged = access_log.read_text()
    assert TOKEN not in logged
    assert '"GET /newsletter/preferences/[token]/ HTTP/1.1" 200' in logged
    assert '"GET /newsletter/unsubscribe/[token]/?List-Unsubscribe=One-Click HTTP/1.1"' in logged
    assert '"GET /newsletter/confirm/[token] HTTP/1.1"' in logged
    assert '"https://news.example.org/newsletter/preferences/[token]/erase/"' in logged
    assert '"GET /newsletter/subscribe/?page=2 HTTP/1.1"' in logged
