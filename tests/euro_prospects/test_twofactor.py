"""Staff who can publish to every reader must pass a TOTP code when REQUIRE_STAFF_2FA is on."""

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.support.factories import UserFactory
from tests.support.people import code_for


@pytest.fixture
def editor(db):
    user = UserFactory.create(username="erin-editor")
    group, _ = Group.objects.get_or_create(name="Editors")
    user.groups.add(group)
    return user


@pytest.fixture
def two_factor_on(settings):
    settings.REQUIRE_STAFF_2FA = True
    settings.STAFF_2FA_GROUPS = ["Editors"]


def test_an_editor_without_a_code_is_sent_to_the_code_page(client, editor, two_factor_on):
    TOTPDevice.objects.create(user=editor, name="phone", confirmed=True)
    client.force_login(editor)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two_factor:verify"))


def test_an_editor_with_the_right_code_reaches_the_admin(client, editor, two_factor_on):
    device = TOTPDevice.objects.create(user=editor, name="phone", confirmed=True)
    client.force_login(editor)
    response = client.post(reverse("two_factor:verify"), {"code": code_for(device), "next": "/admin/"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_wrong_code_keeps_the_editor_out(client, editor, two_factor_on):
    device = TOTPDevice.objects.create(user=editor, name="phone", confirmed=True)
    client.force_login(editor)
    wrong = "000000" if code_for(device) != "000000" else "111111"
    response = client.post(reverse("two_factor:verify"), {"code": wrong})
    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_an_editor_without_a_device_enrols_one_with_a_code_from_it(client, editor, two_factor_on):
    client.force_login(editor)
    response = client.get(reverse("two_factor:verify"), follow=True)
    page = response.content.decode()
    assert "data:image/svg+xml;base64," in page
    secret = re.search(r"<code>([A-Z2-7]+)</code>", page)
    assert secret is not None
    device = TOTPDevice.objects.get(user=editor)
    assert device.confirmed is False
    response = client.post(reverse("two_factor:setup"), {"code": code_for(device)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed is True
    assert client.get("/admin/").status_code == 200


def test_an_unconfirmed_device_does_not_count(client, editor, two_factor_on):
    TOTPDevice.objects.create(user=editor, name="phone", confirmed=False)
    client.force_login(editor)
    response = client.get(reverse("two_factor:verify"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two_factor:setup"))


def test_superusers_need_a_code_too(client, db, two_factor_on):
    client.force_login(UserFactory.create(is_superuser=True))
    assert client.get("/admin/")["Location"].startswith(reverse("two_factor:verify"))


def test_staff_outside_the_protected_groups_are_not_asked(client, db, two_factor_on):
    author = UserFactory.create(username="ari-author")
    author.groups.add(Group.objects.get_or_create(name="Authors")[0])
    client.force_login(author)
    assert client.get("/admin/").status_code == 200


def test_with_the_setting_off_editors_are_not_asked(client, editor, settings):
    settings.REQUIRE_STAFF_2FA = False
    client.force_login(editor)
    assert client.get("/admin/").status_code == 200


def test_the_api_refuses_an_unverified_editor_session(client, editor, two_factor_on):
    client.force_login(editor)
    response = client.get("/api/v1/")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Two-factor verification is required for this account.",
        "code": "two_factor_required",
    }


def test_after_a_wrong_code_even_the_right_one_waits_for_the_throttle(client, editor, two_factor_on):
    device = TOTPDevice.objects.create(user=editor, name="phone", confirmed=True)
    client.force_login(editor)
    right = code_for(device)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(3):
        client.post(reverse("two_factor:verify"), {"code": wrong})
    # Even the right code is refused while the device is throttled.
    response = client.post(reverse("two_factor:verify"), {"code": right})
    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert client.get("/admin/").status_code == 302
