"""The hub operator's view of OCPI peers. Tokens are never shown: only digests and ciphertext are stored."""

from django.contrib import admin, messages

from ocpi import outbox, services
from ocpi.models import OutboxEntry, Peer, PeerParty
from ocpi.transport import OcpiError


class PeerPartyInline(admin.TabularInline):
    """An operator links a CPO party to an existing catalogue tenant here (a credentials exchange never
    hands over a tenant that someone else has); for an invited peer, before it registers."""

    model = PeerParty
    extra = 0
    fields = ["role", "country_code", "party_id", "cpo"]
    raw_id_fields = ["cpo"]


@admin.register(Peer)
class PeerAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "version", "v211_role", "versions_url", "last_pull_at", "date_created"]
    list_filter = ["state", "version"]
    search_fields = ["name", "versions_url", "parties__party_id"]
    # v211_role: editable, the role a 2.1.1 peer plays (its credentials carry none); read at its next exchange.
    fields = ["name", "state", "version", "v211_role", "versions_url", "endpoints", "roles", "last_pull_at",
              "date_created", "date_modified"]
    readonly_fields = ["state", "version", "versions_url", "endpoints", "roles", "last_pull_at", "date_created",
                       "date_modified"]
    inlines = [PeerPartyInline]
    actions = ["rotate_credentials", "unregister"]

    @admin.action(description="Rotate credentials (PUT new credentials to the peer)")
    def rotate_credentials(self, request, queryset):
        for peer in queryset:
            try:
                rotated = services.peer_credentials_rotate(peer=peer)
            except OcpiError as error:
                self.message_user(request, f"{peer.name}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{peer.name}: credentials rotated, OCPI {rotated.version}")

    @admin.action(description="Unregister (DELETE our credentials at the peer, stop all traffic)")
    def unregister(self, request, queryset):
        for peer in queryset.exclude(state=Peer.State.SUSPENDED):
            services.peer_unregister(peer=peer)
            self.message_user(request, f"{peer.name}: unregistered")


@admin.register(OutboxEntry)
class OutboxEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "peer", "module", "country_code", "party_id", "object_id", "date_created", "attempts",
                    "next_attempt_at", "delivered_at", "parked_at", "last_error"]
    list_filter = ["peer", "module", ("delivered_at", admin.EmptyFieldListFilter),
                   ("parked_at", admin.EmptyFieldListFilter)]
    search_fields = ["object_id", "party_id"]
    list_select_related = ["peer"]
    actions = ["retry_parked"]

    @admin.action(description="Retry parked entries")
    def retry_parked(self, request, queryset):
        # The peer refused these for good; after a fix on its side (or ours) they go out again, in line.
        count = outbox.parked_retry(entries=queryset)
        self.message_user(request, f"{count} parked entries put back in line; their peers are kicked")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
