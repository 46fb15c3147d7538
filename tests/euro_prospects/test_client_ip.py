"""The client's address behind proxies: one helper, trusted hops only, and who uses it."""

import subprocess
import sys
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.test import Client, RequestFactory

from euro_prospects.security import client_ip
from tests.support.factories import UserFactory

NGINX = "127.0.0.1"


def request_from(remote: str, **headers: Any) -> HttpRequest:
    return RequestFactory().get("/", REMOTE_ADDR=remote, **headers)


@pytest.fixture
def behind_nginx(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.0/8", "::1"]
    return settings


def test_without_trusted_proxies_forwarded_headers_are_ignored(settings):
    settings.TRUSTED_PROXIES = []
    request = request_from(NGINX, HTTP_X_FORWARDED_FOR="203.0.113.7", HTTP_X_REAL_IP="203.0.113.8")
    assert client_ip(request) == NGINX


def test_a_peer_that_is_not_a_trusted_proxy_cannot_claim_another_address(behind_nginx):
    request = request_from("198.51.100.4", HTTP_X_FORWARDED_FOR="203.0.113.7", HTTP_X_REAL_IP="203.0.113.8")
    assert client_ip(request) == "198.51.100.4"


def test_behind_a_trusted_proxy_the_forwarded_client_is_used(behind_nginx):
    assert client_ip(request_from(NGINX, HTTP_X_FORWARDED_FOR="203.0.113.7")) == "203.0.113.7"


def test_addresses_the_client_wrote_itself_are_never_used(behind_nginx):
    # nginx appends the peer it saw; whatever stands left of it came from the client.
    forged = request_from(NGINX, HTTP_X_FORWARDED_FOR="192.0.2.1, 10.0.0.5, 203.0.113.7")
    assert client_ip(forged) == "203.0.113.7"


def test_it_walks_back_through_every_trusted_hop(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32", "10.0.0.0/8"]
    request = request_from(NGINX, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.7, 10.1.2.3, 10.0.0.9")
    assert client_ip(request) == "203.0.113.7"


def test_when_every_hop_is_trusted_the_farthest_one_is_the_client(behind_nginx):
    assert client_ip(request_from(NGINX, HTTP_X_FORWARDED_FOR="127.0.0.5, 127.0.0.1")) == "127.0.0.5"


def test_garbage_in_the_chain_stops_the_walk_at_the_last_trusted_hop(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32", "10.0.0.0/8"]
    request = request_from(NGINX, HTTP_X_FORWARDED_FOR="203.0.113.7, unknown, 10.0.0.9")
    assert client_ip(request) == "10.0.0.9"


def test_x_real_ip_is_used_when_there_is_no_forwarded_for(behind_nginx):
    assert client_ip(request_from(NGINX, HTTP_X_REAL_IP="203.0.113.8")) == "203.0.113.8"
    assert client_ip(request_from(NGINX, HTTP_X_REAL_IP="not an address")) == NGINX


def test_ports_and_ipv6_forms_are_understood(settings):
    settings.TRUSTED_PROXIES = ["2001:db8::/32", "127.0.0.1"]
    assert client_ip(request_from("2001:db8::1", HTTP_X_FORWARDED_FOR="203.0.113.7:4711")) == "203.0.113.7"
    assert client_ip(request_from(NGINX, HTTP_X_FORWARDED_FOR="[2001:db9::5]:443")) == "2001:db9::5"
    assert client_ip(request_from("::ffff:127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.9")) == "198.51.100.9"


def test_a_missing_or_invalid_peer_address_is_none(behind_nginx):
    assert client_ip(request_from("", HTTP_X_FORWARDED_FOR="203.0.113.7")) is None
    assert client_ip(request_from("somewhere", HTTP_X_FORWARDED_FOR="203.0.113.7")) is None


def test_a_malformed_trusted_proxies_setting_stops_start_up():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={"DJANGO_SETTINGS_MODULE": "euro_prospects.settings", "TRUSTED_PROXIES": "10.0.0.0/8, proxy.example"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "TRUSTED_PROXIES: 'proxy.example' is not an IP address or CIDR range" in result.stderr


def test_login_lockout_counts_each_client_behind_the_proxy_apart(db, behind_nginx):
    user = UserFactory.create(username="editor-one")
    user.set_password("the right password")
    user.save()
    attacker = Client(REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR="203.0.113.66")
    for _ in range(behind_nginx.AXES_FAILURE_LIMIT):
        attacker.post("/admin/login/", {"username": "editor-one", "password": "a wrong guess"})
    locked = attacker.post("/admin/login/", {"username": "editor-one", "password": "the right password"})
    assert locked.status_code == 429

    owner = Client(REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR="198.51.100.20")
    response = owner.post("/admin/login/", {"username": "editor-one", "password": "the right password"})
    assert response.status_code == 302
    assert owner.session["_auth_user_id"] == str(get_user_model().objects.get(username="editor-one").pk)
