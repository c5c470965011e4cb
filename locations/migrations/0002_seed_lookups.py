"""Seed the lookup tables with OCPI 2.2.1's enum values and the portal contract's codes."""

from django.db import migrations

from locations.enums import LOOKUP_SEEDS

MODEL_NAMES = {"ParkingType": "ParkingTypeCode"}


def seed(apps, schema_editor):
    for name, rows in LOOKUP_SEEDS.items():
        model = apps.get_model("locations", MODEL_NAMES.get(name, name))
        for code, description in rows:
            model.objects.update_or_create(code=code, defaults={"description": description})


class Migration(migrations.Migration):
    dependencies = [("locations", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
