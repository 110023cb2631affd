"""Seed the consent statement templates (data, editable in the admin) and make consent evidence
immutable at the database, below the ORM, as the audit log is."""

from django.db import migrations

TEMPLATES = [
    {
        "language": "en-US",
        "purpose": "to create and use a synthetic version of my voice",
        "text": (
            "I, {talent}, am aware that recordings of my voice will be used by {company} "
            "{purpose}. Challenge: {challenge}."
        ),
    },
    {
        "language": "en-GB",
        "purpose": "to create and use a synthetic version of my voice",
        "text": (
            "I, {talent}, am aware that recordings of my voice will be used by {company} "
            "{purpose}. Challenge: {challenge}."
        ),
    },
]

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION consent_evidence_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'consent evidence is immutable: %% refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_evidence_immutable
    BEFORE UPDATE OR DELETE ON consent_consentevidence
    FOR EACH ROW EXECUTE FUNCTION consent_evidence_immutable();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS consent_evidence_immutable ON consent_consentevidence;
DROP FUNCTION IF EXISTS consent_evidence_immutable();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER consent_evidence_no_update BEFORE UPDATE ON consent_consentevidence
       BEGIN SELECT RAISE(ABORT, 'consent evidence is immutable: UPDATE refused'); END;""",
    """CREATE TRIGGER consent_evidence_no_delete BEFORE DELETE ON consent_consentevidence
       BEGIN SELECT RAISE(ABORT, 'consent evidence is immutable: DELETE refused'); END;""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS consent_evidence_no_update;",
    "DROP TRIGGER IF EXISTS consent_evidence_no_delete;",
]


def seed_templates(apps, schema_editor):
    StatementTemplate = apps.get_model("consent", "StatementTemplate")
    for entry in TEMPLATES:
        StatementTemplate.objects.get_or_create(
            language=entry["language"], version=1, defaults=entry
        )


def add_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in {"postgresql": [POSTGRES_FORWARD], "sqlite": SQLITE_FORWARD}.get(vendor, []):
        schema_editor.execute(sql)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in {"postgresql": [POSTGRES_REVERSE], "sqlite": SQLITE_REVERSE}.get(vendor, []):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]
    operations = [
        migrations.RunPython(seed_templates, migrations.RunPython.noop),
        migrations.RunPython(add_triggers, drop_triggers),
    ]
