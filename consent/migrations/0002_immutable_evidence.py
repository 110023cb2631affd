"""Make consent evidence immutable at the database, below the ORM, as the audit log is."""

from django.db import migrations

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
        migrations.RunPython(add_triggers, drop_triggers),
    ]
