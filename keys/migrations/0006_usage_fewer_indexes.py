"""Usage records lose two indexes that no query used (issue #16).

- ``key_id``'s own index: the ``(key, -created_at)`` index leads with the same column and serves
  every lookup by key (and the cascade when a key is deleted).
- ``request_id``'s index (and, on PostgreSQL, its ``_like`` twin): request ids are random, so each
  insert went to a random leaf of a B-tree that grows with the table, and the only reader, the
  admin's search, matches substrings, which no B-tree index serves.

Each was one more B-tree insert per proxied request in the usage writer. The indexes are dropped
by name, found by introspection: an ``AlterField`` would rebuild the whole table on SQLite (twice).
The state change is the ``AlterField``; going back recreates the indexes as Django names them.
"""

from django.db import migrations, models

COLUMNS = (["key_id"], ["request_id"])


def drop_indexes(apps, schema_editor):
    model = apps.get_model("keys", "UsageRecord")
    table = model._meta.db_table
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    for name, info in constraints.items():
        plain_index = info["index"] and not info["unique"] and not info["primary_key"]
        if plain_index and info["columns"] in COLUMNS:
            quote = schema_editor.quote_name
            schema_editor.execute(schema_editor.sql_delete_index % {"table": quote(table), "name": quote(name)})


def create_indexes(apps, schema_editor):
    model = apps.get_model("keys", "UsageRecord")  # the state before this migration: both indexed
    for name in ("key", "request_id"):
        for sql in schema_editor._field_indexes_sql(model, model._meta.get_field(name)):
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("keys", "0005_usage_attempts"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="usagerecord",
                    name="key",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="usage",
                        to="keys.apikey",
                    ),
                ),
                migrations.AlterField(
                    model_name="usagerecord",
                    name="request_id",
                    field=models.CharField(blank=True, max_length=128, verbose_name="request id"),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
        ),
    ]
