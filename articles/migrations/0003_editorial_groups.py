"""Create the Editors and Authors groups with their permissions.

Editors do everything, including publish, schedule and unpublish. Authors
create and edit their own articles until they are published and submit them
for review; they never publish. The services and the admin enforce the
"own articles" part; the groups give the permissions.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

EDITOR_PERMISSIONS = {
    "articles": [
        "add_article", "change_article", "delete_article", "view_article",
        "submit_article", "approve_article", "schedule_article", "publish_article", "unpublish_article",
        "view_articleinreview", "change_articleinreview",
        "add_author", "change_author", "delete_author", "view_author",
        "add_topic", "change_topic", "delete_topic", "view_topic",
        "change_sitesettings", "view_sitesettings",
        "view_historicalarticle", "view_articletransition",
    ],
}
AUTHOR_PERMISSIONS = {
    "articles": [
        "add_article", "change_article", "view_article", "submit_article",
        "view_author", "view_topic",
    ],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in (("Editors", EDITOR_PERMISSIONS), ("Authors", AUTHOR_PERMISSIONS)):
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codenames in wanted.items():
            permissions = Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
            group.permissions.add(*permissions)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Editors", "Authors"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("articles", "0002_editorial_workflow_revisions_renditions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
