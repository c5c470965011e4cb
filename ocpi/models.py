from django.db import models

from locations.models import Cpo


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
    # 2.1.1 has no roles in its credentials: the role the peer plays is chosen on our side (invitation or
    # registration), and decides which endpoints it is offered and whether it receives our pushes.
    v211_role = models.CharField("2.1.1 role", max_length=4, choices=[("CPO", "CPO"), ("EMSP", "eMSP")],
                                 default="CPO")
    # HubClientInfo: a connected peer that stops answering is OFFLINE until it answers again.
    offline_since = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True, help_text="When its ClientInfo status last changed.")
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
    # A party behind a hub: reported by the hub's HubClientInfo, not by its credentials.
    via_hub = models.BooleanField(default=False)
    status = models.CharField(max_length=10, blank=True, help_text="ClientInfo status the hub reported (via_hub).")
    last_updated = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "peer parties"
        constraints = [
            models.UniqueConstraint(fields=["peer", "role", "country_code", "party_id"], name="peerparty_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.role}"


class OutboxEntry(models.Model):
    """A change of an object of an OCPI module that a connected peer has not received yet.

    Written by `ocpi` in the same transaction as the change it announces (the domain app sends a signal
    inside its transaction), so no change is announced that was not committed, and none committed goes
    unannounced. The object is named as OCPI names it, `(module, country_code, party_id, object_id)`;
    `object_pk` is the domain's row, for loading a batch at once. The payload is the object as it is when
    delivered, so several pending entries of one object go out once.

    Delivered in id order per object (ocpi/outbox.py). A transient failure backs off; a permanent refusal
    (4xx, or an OCPI 2xxx) parks the entry with its reason (`parked_at`, `last_error`) and the peer's other
    objects flow on; the next change of that object is tried again.
    """

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="outbox")
    module = models.CharField(max_length=32)
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    object_id = models.CharField(max_length=64)
    object_pk = models.BigIntegerField(null=True, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    parked_at = models.DateTimeField(null=True, blank=True, help_text="Refused for good by the peer; see last_error.")
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name_plural = "outbox entries"
        indexes = [
            models.Index(fields=["peer", "id"], condition=models.Q(delivered_at__isnull=True, parked_at__isnull=True),
                         name="outbox_pending"),
            models.Index(fields=["peer", "module", "country_code", "party_id", "object_id"], name="outbox_object"),
        ]

    def __str__(self) -> str:
        return f"{self.module} {self.country_code}*{self.party_id} {self.object_id} -> peer {self.peer_id}"
