"""Membership ids become UUIDs: a global counter let one tenant read others' membership volume
off the gaps. Existing rows get random ids; nothing references memberships by foreign key, and
audit events keep the old number as text, as history should."""

import uuid

from django.db import migrations, models


def assign_uuids(apps, schema_editor):
    Membership = apps.get_model("tenancy", "Membership")
    for membership in Membership._base_manager.all().iterator():
        membership.uuid = uuid.uuid4()
        membership.save(update_fields=["uuid"])


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0002_default_manager_is_scoped")]

    operations = [
        migrations.AddField(
            model_name="membership", name="uuid", field=models.UUIDField(null=True)
        ),
        migrations.RunPython(assign_uuids, migrations.RunPython.noop),
        migrations.RemoveField(model_name="membership", name="id"),
        migrations.AlterField(
            model_name="membership",
            name="uuid",
            field=models.UUIDField(
                default=uuid.uuid4, editable=False, primary_key=True, serialize=False
            ),
        ),
        migrations.RenameField(model_name="membership", old_name="uuid", new_name="id"),
    ]
