import django.db.models.deletion
from django.db import migrations, models

# PostgreSQL keeps `locations_publicevses` (models.PublicEvses): each location's public EVSEs with their
# connectors as one JSON text, which the compiled search reads instead of the EVSE and connector tables.
# Statement-level triggers on both tables rewrite the rows of the locations a statement touched, in its
# transaction. SQLite: the table only (its search reads the EVSEs themselves).
#
# The layout (arrays read by position: graphql_compiled.EVSE_DOC and CONNECTOR_DOC) and each value's SQL
# are those of graphql_compiled.EVSE_SQL and CONNECTOR_SQL, written out here as a migration must be;
# tests/graphql/test_public_evses.py checks that both give the same values.
#
# Concurrency: the refresh of a location first locks its row (FOR NO KEY UPDATE; the writers lock it FOR
# UPDATE before its EVSEs, so the order is theirs), and each of its statements takes a new snapshot (READ
# COMMITTED): of two transactions changing EVSEs of one location, the second's refresh waits for the first
# to commit and then reads both changes.

ISO = ("(to_char(({0} AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
       "mod(extract(microseconds FROM ({0} AT TIME ZONE 'UTC'))::bigint, 1000000) = 0 THEN '' "
       "ELSE to_char(({0} AT TIME ZONE 'UTC'), '.US') END || '+00:00')")

CONNECTORS = (
    "(SELECT coalesce(json_agg(json_build_array("
    'n."id", n."connector_id", n."standard", n."format", n."power_type", n."max_voltage", n."max_amperage", '
    "n.\"max_electric_power\", NULLIF(n.\"status\", ''), n.\"rate_setting\"::float8, "
    + ISO.format('n."date_created"') + ", " + ISO.format('n."date_modified"')
    + ') ORDER BY n."id"), \'[]\'::json) FROM "locations_connector" n WHERE n."evse_id" = e."id")'
)

EVSES = (
    'json_agg(json_build_array(e."uid", e."evse_id", e."serial_number", e."meter_type", e."status", '
    'e."current_ws_connection_id", e."server_id", e."location_id", '
    + ISO.format('e."date_created"') + ", " + CONNECTORS + ') ORDER BY e."id")::text'
)


# Only the locations of public EVSEs (before or after the change) are refreshed: a write of pending EVSEs
# and their connectors (a CPO's catalogue awaiting moderation) costs the triggers one query each.
def public(row: str) -> str:
    return f"{row}.\"moderation\" = 'PUBLISHED' AND {row}.\"status\" <> 'REMOVED'"


def rows_of(*conditions: str) -> str:
    """The INSERT of the rows of the locations whose public EVSEs (`e`) meet these conditions too."""
    return (f'INSERT INTO "locations_publicevses" ("location_id", "evses") SELECT e."location_id", {EVSES} '
            f'FROM "locations_evse" e WHERE {" AND ".join((*conditions, public("e")))} GROUP BY e."location_id"')


# The writer's batch refreshes the rows of the locations it changed once, after its last statement
# (locations/writer/public_evses.py), and meanwhile its transaction's setting tells the triggers to wait.
DEFERRED = "coalesce(current_setting('evhub.public_evses', true), '') = 'batch'"

# The EVSE columns a location's row is made of: an update of others (last_updated, date_modified ...)
# leaves it as it is.
EVSE_COLUMNS = ("location_id", "uid", "evse_id", "serial_number", "meter_type", "status", "moderation",
                "current_ws_connection_id", "server_id", "date_created")
NEW, OLD = (", ".join(f'{row}."{column}"' for column in EVSE_COLUMNS) for row in ("n", "o"))

REFRESH = f"""
CREATE FUNCTION locations_public_evses_refresh(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM "locations_location" WHERE "id" = ANY(ids) ORDER BY "id" FOR NO KEY UPDATE;
    DELETE FROM "locations_publicevses" WHERE "location_id" = ANY(ids);
    {rows_of('e."location_id" = ANY(ids)')};
END $$"""

OF_EVSES = f"""
CREATE FUNCTION locations_public_evses_of_evses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {DEFERRED} THEN
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM locations_public_evses_refresh(ARRAY(
            SELECT DISTINCT n."location_id" FROM new_rows n WHERE {public("n")}));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM locations_public_evses_refresh(ARRAY(
            SELECT DISTINCT o."location_id" FROM old_rows o WHERE {public("o")}));
    ELSE
        PERFORM locations_public_evses_refresh(ARRAY(
            SELECT ids."location_id" FROM new_rows n JOIN old_rows o ON o."id" = n."id",
                LATERAL (VALUES (n."location_id"), (o."location_id")) AS ids("location_id")
            WHERE (({public("n")}) OR ({public("o")})) AND ({NEW}) IS DISTINCT FROM ({OLD})
            GROUP BY ids."location_id"));
    END IF;
    RETURN NULL;
END $$"""

OF_CONNECTORS = f"""
CREATE FUNCTION locations_public_evses_of_connectors() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {DEFERRED} THEN
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM locations_public_evses_refresh(ARRAY(
            SELECT DISTINCT e."location_id" FROM new_rows n JOIN "locations_evse" e ON e."id" = n."evse_id"
            WHERE {public("e")}));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM locations_public_evses_refresh(ARRAY(
            SELECT DISTINCT e."location_id" FROM old_rows n JOIN "locations_evse" e ON e."id" = n."evse_id"
            WHERE {public("e")}));
    ELSE
        PERFORM locations_public_evses_refresh(ARRAY(
            SELECT DISTINCT e."location_id"
            FROM (SELECT "evse_id" FROM new_rows UNION SELECT "evse_id" FROM old_rows) n
            JOIN "locations_evse" e ON e."id" = n."evse_id" WHERE {public("e")}));
    END IF;
    RETURN NULL;
END $$"""

# Every location's row anew, from the tables (the backfill below; a bulk load with the triggers off, as the
# benches' loader, calls it after its COPY).
REBUILD = f"""
CREATE FUNCTION locations_public_evses_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE "locations_publicevses" IN EXCLUSIVE MODE;
    DELETE FROM "locations_publicevses";
    {rows_of()};
END $$"""

TRANSITIONS = {"INSERT": "NEW TABLE AS new_rows", "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
               "DELETE": "OLD TABLE AS old_rows"}
TRIGGERS = [(f"locations_public_evses_{model}_{event.lower()}", table, event, function)
            for model, table, function in (("evse", "locations_evse", "locations_public_evses_of_evses"),
                                           ("connector", "locations_connector", "locations_public_evses_of_connectors"))
            for event in TRANSITIONS]

STATEMENTS = [
    REFRESH, OF_EVSES, OF_CONNECTORS, REBUILD,
    *(f'CREATE TRIGGER {name} AFTER {event} ON "{table}" REFERENCING {TRANSITIONS[event]} '
      f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()" for name, table, event, function in TRIGGERS),
    "SELECT locations_public_evses_rebuild()",
]
DROP = [
    *(f'DROP TRIGGER IF EXISTS {name} ON "{table}"' for name, table, _, _ in TRIGGERS),
    "DROP FUNCTION IF EXISTS locations_public_evses_of_evses()",
    "DROP FUNCTION IF EXISTS locations_public_evses_of_connectors()",
    "DROP FUNCTION IF EXISTS locations_public_evses_refresh(bigint[])",
    "DROP FUNCTION IF EXISTS locations_public_evses_rebuild()",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in STATEMENTS:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('locations', '0007_geo_knn_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='PublicEvses',
            fields=[
                ('location', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='locations.location')),
                ('evses', models.TextField()),
            ],
            options={
                'verbose_name_plural': 'public EVSEs',
            },
        ),
        migrations.RunPython(forward, backward, elidable=False),
    ]
