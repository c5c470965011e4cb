from django.db import models


class Peer(models.Model):
    """Another OCPI platform (CPO, eMSP, hub) connected to us, or invited to connect."""

    class State(models.TextChoices):
        INVITED = "INVITED"
        CONNECTED = "CONNECTED"
        SUSPENDED = "SUSPENDED"

    name = models.CharField(max_length=100)
    state = models.CharField(max_length=10, choices=State.choices, default=State.INVITED)
    # Token A that we issued, as a digest; it is good for the credentials handshake only.
    token_a_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name
