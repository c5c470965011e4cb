from django.contrib import admin

from ocpi.models import Peer


@admin.register(Peer)
class PeerAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "date_created"]
    list_filter = ["state"]
