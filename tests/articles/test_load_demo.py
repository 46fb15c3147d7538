from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from articles.models import Article, Topic


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path  # the demo draws its images into the media directory


def test_demo_data_loads_twice_without_duplicates(db):
    call_command("load_demo", stdout=StringIO())
    call_command("load_demo", stdout=StringIO())
    assert Article.objects.published().count() == 3
    assert Topic.objects.count() == 4
    assert get_user_model().objects.get(username="editor").is_staff


def test_home_page_lists_demo_articles(client, db):
    call_command("load_demo", stdout=StringIO())
    response = client.get("/")
    assert response.status_code == 200
    assert "A slow road to the single grid" in response.content.decode()


def test_demo_editor_can_log_in_to_the_admin(client, db):
    call_command("load_demo", stdout=StringIO())
    # Through the login form, as a person would (and past the lockout backend).
    response = client.post(
        "/admin/login/", {"username": "editor", "password": "demo-editor-password", "next": "/admin/"}
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_demo_accounts_have_their_roles(db):
    call_command("load_demo", stdout=StringIO())
    call_command("load_demo", stdout=StringIO())
    users = get_user_model().objects
    assert users.get(username="editor").groups.filter(name="Editors").exists()
    correspondent = users.get(username="correspondent")
    assert correspondent.groups.filter(name="Authors").exists()
    assert correspondent.check_password("demo-correspondent-password")
    assert correspondent.author_profile.slug == "mara-velden"


def test_the_demo_editor_is_an_editor_and_no_superuser_even_after_an_older_demo(db):
    call_command("load_demo", stdout=StringIO())
    users = get_user_model().objects
    users.filter(username="editor").update(is_superuser=True)  # as an older demo made it
    output = StringIO()
    call_command("load_demo", stdout=output)
    editor = users.get(username="editor")
    assert not editor.is_superuser
    assert list(editor.groups.values_list("name", flat=True)) == ["Editors"]
    assert not editor.has_perm("auth.change_user")
    assert editor.has_perm("articles.publish_article")
    assert "'editor' with password 'demo-editor-password': an Editor (Editors group; not a superuser)" in (
        output.getvalue()
    )
    assert not users.filter(is_superuser=True).exists()
