from django.apps import AppConfig


class OcpiConfig(AppConfig):
    name = "ocpi"
    verbose_name = "OCPI"

    def ready(self):
        from locations.signals import locations_changed, locations_withdrawn
        from ocpi import push

        # Connected eMSPs get every change of a published location (ocpi/push.py), and hear of one withdrawn.
        locations_changed.connect(push.on_locations_changed, dispatch_uid="ocpi.push.on_locations_changed")
        locations_withdrawn.connect(push.on_locations_withdrawn, dispatch_uid="ocpi.push.on_locations_withdrawn")
