from django.db import models


class PortalClient(models.Model):
    """A trusted front end (CPO portal, drivers' app) that calls with `Authorization: Basic <key>`."""

    name = models.CharField(max_length=100, unique=True)
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    date_created = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name
