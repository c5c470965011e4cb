from django.db import migrations

# Geo search on PostgreSQL: a GiST index on each visible location's point on the unit sphere, as a `cube`
# (x, y, z), for nearest-first scans (`ORDER BY point <-> origin`). Why this index, with the figures, and
# why `cube` alone rather than earthdistance's `ll_to_earth`: locations/selectors.py ("Geo search on
# PostgreSQL"). `cube` is a trusted extension (PostgreSQL 13+): the database's owner may create it without
# being a superuser. The expression must stay textually in step with `selectors.GEO_POINT_SQL`.
# SQLite: nothing (its search keeps the bounding box on location_published_geo_idx).

INDEX = "location_published_knn_idx"
POINT = ('cube(ARRAY[cos(radians("address_lat")) * cos(radians("address_lng")), '
         'cos(radians("address_lat")) * sin(radians("address_lng")), sin(radians("address_lat"))])')


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS cube")
    schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "locations_location" USING gist (({POINT})) '
                          "WHERE (moderation = 'PUBLISHED' AND publish)")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f'DROP INDEX IF EXISTS "{INDEX}"')  # the extension may serve others: it stays


class Migration(migrations.Migration):

    dependencies = [
        ('locations', '0006_ocpi_ids_211'),
    ]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
