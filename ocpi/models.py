from django.db import models

from locations.models import Cpo, Location


class Peer(models.Model):
    """Another OCPI platform (CPO, eMSP, hub) connected to us, or invited to connect.

    Three tokens matter. Token A: issued by us for a platform that will register with us (digest; good
    for versions and credentials only). The token the peer calls us with (our token C when it registered
    with us, our token B when we registered with it): a digest in `token_in_digest`. The token we call
    the peer with (its token C or B): `token_out`, encrypted at rest because we must send it.
    """

    class State(models.TextChoices):
        INVITED = "INVITED"  # token A issued; nothing exchanged yet
        CONNECTED = "CONNECTED"
        SUSPENDED = "SUSPENDED"  # the peer unregistered us (or an operator stopped it)

    name = models.CharField(max_length=100)
    state = models.CharField(max_length=10, choices=State.choices, default=State.INVITED)
    token_a_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    token_in_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    token_out = models.TextField(blank=True, editable=False, help_text="Encrypted (locations.tokens.secret_encrypt).")
    version = models.CharField(max_length=10, blank=True, help_text="The OCPI version agreed with the peer.")
    versions_url = models.URLField(max_length=255, blank=True)
    # {identifier: {"SENDER": url, "RECEIVER": url}}; 2.1.1 endpoints (no role) are stored under "ANY".
    endpoints = models.JSONField(default=dict, blank=True)
    # The peer's credentials roles as it sent them (2.1.1: one role made from its party fields).
    roles = models.JSONField(default=list, blank=True)
    last_pull_at = models.DateTimeField(null=True, blank=True, help_text="Start of the last successful pull.")
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def endpoint(self, identifier: str, role: str) -> str | None:
        """The URL of the peer's module `identifier` in `role` (SENDER/RECEIVER), if it has one."""
        urls = self.endpoints.get(identifier) or {}
        return urls.get(role) or urls.get("ANY")


class PeerParty(models.Model):
    """A party (country code + party id, one role) that a peer represents.

    For the CPO role the party's catalogue tenant is `cpo`: what the peer pushes to our receiver, or
    what we pull from its sender, is stored there, and only there.
    """

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="parties")
    role = models.CharField(max_length=10)
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    cpo = models.ForeignKey(Cpo, null=True, blank=True, on_delete=models.PROTECT, related_name="ocpi_parties")

    class Meta:
        verbose_name_plural = "peer parties"
        constraints = [
            models.UniqueConstraint(fields=["peer", "role", "country_code", "party_id"], name="peerparty_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.role}"


class OutboxEntry(models.Model):
    """A change of a location that a connected eMSP has not received yet.

    Written after the change commits; delivered in id order per peer by ocpi.push, retried with backoff
    while the peer is down. The payload is the location as it is when delivered, so several pending
    entries of one location are sent once.
    """

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="outbox")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    date_created = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name_plural = "outbox entries"
        indexes = [
            models.Index(fields=["peer", "id"], condition=models.Q(delivered_at__isnull=True),
                         name="outbox_pending"),
        ]
