from django.db import models


class PortalClient(models.Model):
    """A trusted front end (CPO portal, drivers' app) that calls with `Authorization: Basic <key>`."""

    name = models.CharField(max_length=100, unique=True)
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    date_created = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class PortalSession(models.Model):
    """One login of a CPO user: its refresh token rotates, and revoking the session ends both tokens."""

    sid = models.UUIDField(unique=True)
    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="portal_sessions")
    cpo = models.ForeignKey("locations.Cpo", on_delete=models.CASCADE, related_name="portal_sessions")
    # The jti of the one refresh token that may still be used; an older one is a replay.
    refresh_jti = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    # The front end that logged the user in: its logo uploads are the user's too.
    client = models.ForeignKey(PortalClient, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="sessions")

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"], name="portal_session_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} {self.sid}"


class LogoUpload(models.Model):
    """A logo as its uploader knows it: by the file name it uploaded (`cpo-logo.png`), since the contract's
    upload answers `data: []` and register and the logo update then name the file so."""

    file_name = models.CharField(max_length=255, help_text="The name of the file as it was uploaded.")
    storage_name = models.CharField(max_length=255, unique=True)
    # The uploader: a front end's key (Basic) or a CPO user's session (Bearer).
    client = models.ForeignKey(PortalClient, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="logo_uploads")
    cpo = models.ForeignKey("locations.Cpo", null=True, blank=True, on_delete=models.CASCADE,
                            related_name="logo_uploads")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["file_name", "uploaded_at"], name="logo_upload_name_idx")]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.storage_name})"


# Drivers live in their own room; imported here so that Django registers them with the app.
from emsp.drivers.models import Driver, DriverSession  # noqa: E402, F401
