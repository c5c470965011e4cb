"""Drivers: people with car accounts, who log in to read and act on their own cars.

Kept apart from the portal's `PortalSession`, whose `cpo` is required: a driver has no CPO, and a token of
one kind must never open the other's endpoints.
"""

from django.db import models


class Driver(models.Model):
    """The profile that makes an auth.User a driver; only users with one may log in at the drivers' login."""

    user = models.OneToOneField("auth.User", on_delete=models.CASCADE, related_name="driver")
    # What the ZE Services login told its clients about the user.
    locale = models.CharField(max_length=16, default="en_GB")
    country = models.CharField(max_length=2, default="GB")
    timezone = models.CharField(max_length=64, default="Europe/London")
    phone_number = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.user.username


class DriverSession(models.Model):
    """One login of a driver: its refresh token rotates on the drivers' refresh, and revoking the session
    ends both tokens."""

    sid = models.UUIDField(unique=True)
    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="driver_sessions")
    # The jti of the one refresh token that may still be used; an older one is a replay.
    refresh_jti = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"], name="driver_session_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} {self.sid}"
