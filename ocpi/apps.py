from django.apps import AppConfig


class OcpiConfig(AppConfig):
    name = "ocpi"
    verbose_name = "OCPI"

    def ready(self):
        from locations.signals import locations_changed, locations_withdrawn
        from ocpi import registry
        from ocpi.modules.locations import push as locations_push

        # Every module registers itself for push and pull (ocpi/modules/<module>/push.py).
        registry.modules()
        # Connected eMSPs get every change of a published location, and hear of one withdrawn: the outbox
        # entries are written inside the transaction that sends these (ocpi/modules/locations/push.py).
        locations_changed.connect(locations_push.on_locations_changed,
                                  dispatch_uid="ocpi.locations.on_locations_changed")
        locations_withdrawn.connect(locations_push.on_locations_withdrawn,
                                    dispatch_uid="ocpi.locations.on_locations_withdrawn")
