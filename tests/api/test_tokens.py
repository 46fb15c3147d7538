"""API tokens: hashed at rest, expiring, revocable by their owner and Editors, made only after two factors."""

import hashlib
import importlib
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.support.people import code_for

TOKENS = "/api/v1/tokens/"


def token_for(user) -> str:
    return AuthToken.objects.create(user=user)[1]


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def can_write(key: str) -> int:
    return with_token(key).post("/api/v1/articles/", {"title": "With a token"}, format="json").status_code


def made_by_command(username: str, capsys, *args: str) -> str:
    call_command("drf_create_token", username, *args)
    [line] = capsys.readouterr().out.splitlines()
    return line.split()[2]


# --- at rest ----------------------------------------------------------------------------------


def test_the_database_keeps_only_a_digest_of_the_key(eva, capsys):
    key = made_by_command("eva", capsys)
    [token] = AuthToken.objects.filter(user=eva)
    assert token.digest == hashlib.sha512(key.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        [row] = cursor.fetchall()
    assert all(key not in str(value) for value in row)
    assert can_write(key) == 201


def test_a_plain_text_token_of_the_old_kind_no_longer_works(eva, anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION="Token " + "a1" * 20)
    response = anonymous.get("/api/v1/articles/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


# --- expiry -----------------------------------------------------------------------------------


def test_a_token_expires_after_api_token_ttl(eva):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        key = token_for(eva)
        assert AuthToken.objects.get().expiry == timezone.now() + timedelta(days=30)
        traveller.shift(timedelta(days=30) - timedelta(minutes=1))
        assert can_write(key) == 201
        traveller.shift(timedelta(minutes=2))
        assert can_write(key) == 401
    assert not AuthToken.objects.exists(), "an expired token is deleted when it is next presented"


def test_api_token_ttl_sets_the_lifetime(eva, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(hours=1)}
    token_for(eva)
    assert AuthToken.objects.get().expiry - timezone.now() < timedelta(hours=1)


@pytest.mark.parametrize(("value", "printed"), [("3600", "1:00:00"), ("0", "API_TOKEN_TTL must be 1 second or more")])
def test_api_token_ttl_is_read_from_the_environment(value, printed):
    script = "import django; django.setup(); from django.conf import settings; print(settings.REST_KNOX['TOKEN_TTL'])"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "euro_prospects.settings", "API_TOKEN_TTL": value},
        capture_output=True,
        text=True,
        check=False,
    )
    assert printed in result.stdout + result.stderr


# --- listing and revoking ---------------------------------------------------------------------


def test_owners_list_their_own_tokens_and_editors_everyones(eva, cora):
    cora_key, eva_key = token_for(cora), token_for(eva)
    cora_sees = with_token(cora_key).get(TOKENS).json()
    assert [(t["user"], t["id"]) for t in cora_sees] == [("cora", cora_key[:15])]
    assert "token" not in cora_sees[0]
    assert {t["user"] for t in with_token(eva_key).get(TOKENS).json()} == {"cora", "eva"}


def test_an_owner_revokes_a_token_and_it_stops_working(cora):
    key, spare = token_for(cora), token_for(cora)
    assert with_token(spare).delete(f"{TOKENS}{key[:15]}/").status_code == 204
    assert can_write(key) == 401
    assert can_write(spare) == 201


def test_an_editor_revokes_someone_elses_token(eva, cora):
    cora_key = token_for(cora)
    assert with_token(token_for(eva)).delete(f"{TOKENS}{cora_key[:15]}/").status_code == 204
    assert can_write(cora_key) == 401


def test_an_author_cannot_revoke_an_editors_token(eva, cora):
    eva_key = token_for(eva)
    response = with_token(token_for(cora)).delete(f"{TOKENS}{eva_key[:15]}/")
    assert response.status_code == 404
    assert can_write(eva_key) == 201


def test_tokens_are_listed_and_revoked_in_the_admin(client, eva, cora):
    cora_key, eva_key = token_for(cora), token_for(eva)
    client.force_login(cora)
    page = client.get(reverse("admin:knox_authtoken_changelist")).content.decode()
    assert cora_key[:8] in page
    assert eva_key[:8] not in page
    evas = reverse("admin:knox_authtoken_change", args=[AuthToken.objects.get(user=eva).digest])
    assert client.get(evas).status_code == 302, "someone else's token is not found"

    client.force_login(eva)
    digest = AuthToken.objects.get(user=cora).digest
    response = client.post(reverse("admin:knox_authtoken_delete", args=[digest]), {"post": "yes"})
    assert response.status_code == 302
    assert can_write(cora_key) == 401


# --- making tokens: a password session with two factors ---------------------------------------


@pytest.fixture
def two_factor_on(settings):
    settings.REQUIRE_STAFF_2FA = True
    settings.STAFF_2FA_GROUPS = ["Editors"]


def test_a_session_without_its_two_factor_code_cannot_make_a_token(client, eva, two_factor_on):
    TOTPDevice.objects.create(user=eva, name="phone", confirmed=True)
    client.force_login(eva)
    assert client.post(TOKENS).status_code == 403
    response = client.post(reverse("admin:knox_authtoken_add"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two_factor:verify"))
    assert not AuthToken.objects.exists()


def test_after_the_two_factor_code_the_editor_gets_a_working_token_once(client, eva, two_factor_on):
    device = TOTPDevice.objects.create(user=eva, name="phone", confirmed=True)
    client.force_login(eva)
    client.post(reverse("two_factor:verify"), {"code": code_for(device)})
    response = client.post(TOKENS)
    assert response.status_code == 201
    key = response.json()["token"]
    assert can_write(key) == 201
    assert all("token" not in listed for listed in client.get(TOKENS).json())

    page = client.post(reverse("admin:knox_authtoken_add"))
    assert page.status_code == 200
    [_, admin_token] = AuthToken.objects.filter(user=eva).order_by("created")
    shown = page.content.decode().split('<code id="api-token">')[1].split("</code>")[0]
    assert admin_token.digest == hashlib.sha512(shown.encode()).hexdigest()


def test_an_author_without_two_factor_duty_makes_a_token_from_the_session(client, cora, two_factor_on):
    client.force_login(cora)
    response = client.post(TOKENS)
    assert response.status_code == 201
    assert response.json()["user"] == "cora"


def test_a_token_cannot_make_another_token(eva):
    response = with_token(token_for(eva)).post(TOKENS)
    assert response.status_code == 403
    assert "signed-in session" in response.json()["detail"]
    assert AuthToken.objects.count() == 1


def test_a_reader_account_cannot_make_a_token(client, db):
    from tests.support.factories import UserFactory

    client.force_login(UserFactory.create(username="reader", is_staff=False))
    assert client.post(TOKENS).status_code == 403


# --- the operator's command -------------------------------------------------------------------


def test_the_command_prints_a_new_working_token_on_one_line(eva, capsys):
    first = made_by_command("eva", capsys)
    second = made_by_command("eva", capsys)
    assert len(first) == 64
    assert first != second
    assert can_write(first) == can_write(second) == 201


def test_the_command_with_reset_revokes_the_users_other_tokens(eva, capsys):
    old = made_by_command("eva", capsys)
    new = made_by_command("eva", capsys, "--reset")
    assert can_write(old) == 401
    assert can_write(new) == 201


def test_the_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="There is no user called 'nobody'"):
        call_command("drf_create_token", "nobody")


# --- leaving DRF's plain-text tokens ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_drops_the_plain_text_token_table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer)")
    content_type = ContentType.objects.create(app_label="authtoken", model="token")
    Permission.objects.create(content_type=content_type, codename="view_token", name="Can view token")
    MigrationRecorder(connection).record_applied("authtoken", "0001_initial")

    migration = importlib.import_module("api.migrations.0001_drop_plain_text_tokens")
    from django.apps import apps

    with connection.schema_editor() as editor:
        migration.drop_authtoken(apps, editor)

    assert "authtoken_token" not in connection.introspection.table_names()
    assert not ContentType.objects.filter(app_label="authtoken").exists()
    assert not Permission.objects.filter(codename="view_token").exists()
    assert not MigrationRecorder(connection).migration_qs.filter(app="authtoken").exists()
