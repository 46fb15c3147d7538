"""Give the Editors group the newsletter permissions (see newsletter/roles.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from newsletter.roles import grant_editor_permissions, revoke_editor_permissions


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make this app's now.
    app_config = apps.get_app_config("newsletter")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    app_config.models_module = None
    grant_editor_permissions(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def revoke(apps, schema_editor):
    revoke_editor_permissions(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("newsletter", "0003_merge_20261128_0607"),
        ("articles", "0003_editorial_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
