from django.db import migrations, models


def pending_locations_named(apps, schema_editor):
    """The outbox named a location by foreign key; it now names any module's object as OCPI does. Pending
    entries are kept (named by their location's party and id); delivered ones are history and dropped."""
    OutboxEntry = apps.get_model("ocpi", "OutboxEntry")
    OutboxEntry.objects.filter(delivered_at__isnull=False).delete()
    for entry in OutboxEntry.objects.select_related("location__cpo").iterator():
        location = entry.location
        OutboxEntry.objects.filter(pk=entry.pk).update(
            module="locations", country_code=location.cpo.country_code, party_id=location.cpo.party_id,
            object_id=location.ocpi_id, object_pk=location.pk)


class Migration(migrations.Migration):

    dependencies = [
        ('locations', '0002_seed_lookups'),
        ('ocpi', '0002_peers_outbox'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='outboxentry',
            name='outbox_pending',
        ),
        migrations.AddField(
            model_name='outboxentry',
            name='country_code',
            field=models.CharField(default='', max_length=2),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='outboxentry',
            name='module',
            field=models.CharField(default='', max_length=32),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='outboxentry',
            name='object_id',
            field=models.CharField(default='', max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='outboxentry',
            name='object_pk',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='outboxentry',
            name='parked_at',
            field=models.DateTimeField(blank=True, help_text='Refused for good by the peer; see last_error.', null=True),
        ),
        migrations.AddField(
            model_name='outboxentry',
            name='party_id',
            field=models.CharField(default='', max_length=3),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='peer',
            name='offline_since',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='peer',
            name='status_changed_at',
            field=models.DateTimeField(blank=True, help_text='When its ClientInfo status last changed.', null=True),
        ),
        migrations.AddField(
            model_name='peer',
            name='v211_role',
            field=models.CharField(choices=[('CPO', 'CPO'), ('EMSP', 'eMSP')], default='CPO', max_length=4, verbose_name='2.1.1 role'),
        ),
        migrations.AddField(
            model_name='peerparty',
            name='last_updated',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='peerparty',
            name='status',
            field=models.CharField(blank=True, help_text='ClientInfo status the hub reported (via_hub).', max_length=10),
        ),
        migrations.AddField(
            model_name='peerparty',
            name='via_hub',
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(pending_locations_named, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='outboxentry',
            name='location',
        ),
        migrations.AddIndex(
            model_name='outboxentry',
            index=models.Index(condition=models.Q(('delivered_at__isnull', True), ('parked_at__isnull', True)), fields=['peer', 'id'], name='outbox_pending'),
        ),
        migrations.AddIndex(
            model_name='outboxentry',
            index=models.Index(fields=['peer', 'module', 'country_code', 'party_id', 'object_id'], name='outbox_object'),
        ),
    ]
