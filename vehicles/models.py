"""Drivers' car-maker accounts, their cars, what the cars last said, and what drivers asked of them.

The contract for the other rooms (emsp's endpoints, the providers, the sync engine):

- The driver is `settings.AUTH_USER_MODEL`. A driver links `MakerAccount`s (one per maker login; the pair
  (provider, external_id) is linked once, by one driver). Its tokens live encrypted in `secrets`; read and
  write them only through `vehicles.services.maker_account_tokens` / `maker_account_tokens_save`.
- `Vehicle.vin` is unique across the hub: a car belongs to one account. `capabilities` lists the contract
  names (readings and actions of `vehicles.providers.base.READINGS` / `ACTIONS`) the car supports;
  one the maker refuses for good is removed and recorded in `unsupported`.
- `VehicleState` is the latest known state, one row per car; `VehicleSample` the append-only history,
  unique on (vehicle, maker_timestamp): the same reading arriving twice (retry, stream and poll) is one row.
- `RemoteAction.id` is the `notificationId` the contract answers with; its status only ever leaves
  PENDING once (services.vehicle_action_advance).
- Freshness and quota are data, not logs: `VehicleState.fetched_at`, `Vehicle.last_success_at`,
  `MakerAccount.quota_*` and `cooldown_until` are shown by the API and the admin.

Bounds: every text has a max_length and every number validators that both SQLite and PostgreSQL hold.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

# --- choices shared with the providers and the endpoints ----------------------------------------


class Provider(models.TextChoices):
    RENAULT = "renault", "Renault / Dacia (Kamereon)"
    BMW = "bmw", "BMW / MINI (CarData)"
    SIMULATOR = "simulator", "Simulated car"


class AccountStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "active"
    # The maker rejected the refresh token (or the login token): only the driver can fix it.
    NEEDS_RELOGIN = "NEEDS_RELOGIN", "needs re-login"
    # Retryable failures that have lasted: still retried, shown so that staleness is never silent.
    FAILING = "FAILING", "failing"


class ChargingState(models.TextChoices):
    CHARGING = "CHARGING", "charging"
    NOT_CHARGING = "NOT_CHARGING", "not charging"
    COMPLETE = "COMPLETE", "charge complete"
    ERROR = "ERROR", "charging error"
    UNKNOWN = "UNKNOWN", "unknown"


class PollStatus(models.TextChoices):
    OK = "OK", "ok"
    BACKOFF = "BACKOFF", "backing off after a retryable error"
    # The account needs a re-login, or the car was gone from it: not polled until that changes.
    PAUSED = "PAUSED", "paused"


class ActionStatus(models.TextChoices):
    PENDING = "PENDING", "pending"
    COMPLETED = "COMPLETED", "completed"
    FAILED = "FAILED", "failed"
    TIMEOUT = "TIMEOUT", "timeout"


class NotificationChannel(models.TextChoices):
    EMAIL = "EMAIL", "e-mail"
    SMS = "SMS", "SMS"
    NONE = "NONE", "none"


# "HHMM", 00:00 to 23:59.
hhmm_validator = RegexValidator(r"^([01][0-9]|2[0-3])[0-5][0-9]$", "a time of day as HHMM (0000 to 2359)")
# Charging schedules start on the quarter hour (the makers' rule).
quarter_validator = RegexValidator(r"^([01][0-9]|2[0-3])(00|15|30|45)$",
                                   "a start as HHMM on :00, :15, :30 or :45")
SOC = [MinValueValidator(0.0), MaxValueValidator(100.0)]
RANGE_KM = [MinValueValidator(0.0), MaxValueValidator(5000.0)]
POWER_KW = [MinValueValidator(-1000.0), MaxValueValidator(1000.0)]  # negative: the car feeds back (V2G)
ODOMETER_KM = [MinValueValidator(0.0), MaxValueValidator(10_000_000.0)]
LATITUDE = [MinValueValidator(-90.0), MaxValueValidator(90.0)]
LONGITUDE = [MinValueValidator(-180.0), MaxValueValidator(180.0)]
WEEKDAY = [MinValueValidator(0), MaxValueValidator(6)]  # Monday is 0, as Python's weekday()
QUOTA = [MinValueValidator(0.0), MaxValueValidator(1_000_000.0)]


class MakerAccount(models.Model):
    driver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="maker_accounts")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    # The maker's own id of the login: Kamereon accountId, CarData gcid, the simulator's account.
    external_id = models.CharField(max_length=128)
    label = models.CharField(max_length=254, blank=True, help_text="the login name the driver knows it by")
    # Fernet-encrypted JSON of providers.base.Tokens (access, refresh, id tokens): never plain text.
    secrets = models.TextField(blank=True, max_length=20_000)
    # Not secret, provider-specific: country, CarData client_id, the simulator's base URL...
    options = models.JSONField(default=dict, blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)

    status = models.CharField(max_length=16, choices=AccountStatus.choices, default=AccountStatus.ACTIVE)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # The quota as last known (the bucket itself lives in Redis or the cache): tokens left, when full again.
    quota_tokens = models.FloatField(null=True, blank=True, validators=QUOTA)
    quota_refill_at = models.DateTimeField(null=True, blank=True)
    # After the maker's own quota error the whole account waits, polls, refreshes and actions alike.
    cooldown_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "external_id"], name="vehicles_account_provider_external"),
        ]
        indexes = [models.Index(fields=["driver", "provider"], name="vehicles_account_driver")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.label or self.external_id}"


class Vehicle(models.Model):
    account = models.ForeignKey(MakerAccount, on_delete=models.CASCADE, related_name="vehicles")
    # VINs are 17 characters; some makers' test fleets and old records are shorter.
    vin = models.CharField(max_length=32, unique=True)
    # The maker's own vehicle id (CarData and the simulator have one; Kamereon uses the VIN).
    maker_id = models.CharField(max_length=64)
    brand = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=64, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True,
                                            validators=[MinValueValidator(1900), MaxValueValidator(2100)])
    battery_capacity_kwh = models.FloatField(null=True, blank=True,
                                             validators=[MinValueValidator(0.0), MaxValueValidator(1000.0)])
    capabilities = models.JSONField(default=list, blank=True)
    # Preconditioning needs the battery above this (45 % on a ZOE); null: no floor.
    hvac_min_soc = models.FloatField(null=True, blank=True, validators=SOC)
    # Capabilities the maker refused for good (feature absent): never asked again, said why.
    unsupported = models.JSONField(default=dict, blank=True)

    # The sync engine's bookkeeping: when the car is due, and how its polling goes.
    next_poll_at = models.DateTimeField(null=True, blank=True)
    # Set by the dispatcher with next_poll_at pushed past a lease: only the task holding this claim polls
    # the car, so a redelivered or duplicated task does nothing twice.
    claim_id = models.CharField(max_length=32, blank=True)
    poll_status = models.CharField(max_length=8, choices=PollStatus.choices, default=PollStatus.OK)
    poll_failures = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(10_000)])
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The dispatcher's scan: due cars in order.
            models.Index(fields=["next_poll_at"], name="vehicles_vehicle_due"),
            models.Index(fields=["account", "maker_id"], name="vehicles_vehicle_maker_id"),
        ]

    def __str__(self) -> str:
        return f"{self.brand} {self.model} {self.vin}".strip()

    def supports(self, capability: str) -> bool:
        return capability in (self.capabilities or []) and capability not in (self.unsupported or {})


class _StateFields(models.Model):
    soc = models.FloatField(null=True, blank=True, validators=SOC, help_text="state of charge, %")
    range_km = models.FloatField(null=True, blank=True, validators=RANGE_KM)
    charging_state = models.CharField(max_length=16, choices=ChargingState.choices, default=ChargingState.UNKNOWN)
    plugged = models.BooleanField(null=True, blank=True)
    charging_power_kw = models.FloatField(null=True, blank=True, validators=POWER_KW)
    latitude = models.FloatField(null=True, blank=True, validators=LATITUDE)
    longitude = models.FloatField(null=True, blank=True, validators=LONGITUDE)
    odometer_km = models.FloatField(null=True, blank=True, validators=ODOMETER_KM)
    # The maker's own time of the reading: samples are keyed on it, not on when we fetched them.
    maker_timestamp = models.DateTimeField()
    fetched_at = models.DateTimeField()

    class Meta:
        abstract = True


class VehicleState(_StateFields):
    vehicle = models.OneToOneField(Vehicle, on_delete=models.CASCADE, primary_key=True, related_name="state")
    # True when soc was computed by us (charging power x time since the last reading), not read.
    estimated = models.BooleanField(default=False)
    # The latest answer of each other reading (hvac-status, lock-status...), by contract name:
    # {"lock-status": {"data": {...}, "fetched_at": "...Z"}}.
    readings = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.vehicle_id} {self.soc}% at {self.maker_timestamp:%Y-%m-%d %H:%M}"


class SampleSource(models.TextChoices):
    POLL = "POLL", "poll"
    STREAM = "STREAM", "stream"
    ACTION = "ACTION", "after an action"


class VehicleSample(_StateFields):
    vehicle = models.ForeignKey(Vehicle, on_delete=models.CASCADE, related_name="samples")
    source = models.CharField(max_length=8, choices=SampleSource.choices, default=SampleSource.POLL)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["vehicle", "maker_timestamp"], name="vehicles_sample_once"),
        ]

    def __str__(self) -> str:
        return f"{self.vehicle_id} {self.soc}% at {self.maker_timestamp:%Y-%m-%d %H:%M:%S}"


class RemoteAction(models.Model):
    # The contract's notificationId.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    vehicle = models.ForeignKey(Vehicle, on_delete=models.CASCADE, related_name="actions")
    action = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=ActionStatus.choices, default=ActionStatus.PENDING)
    # The maker's job id where it gives one (Renault gives none: confirmed by re-reading state).
    external_id = models.CharField(max_length=128, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(1000)])
    requested_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Past this a PENDING action is TIMEOUT: the car never answered.
    deadline_at = models.DateTimeField()
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["vehicle", "-requested_at"], name="vehicles_action_vehicle"),
            models.Index(fields=["status", "deadline_at"], name="vehicles_action_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.status} {self.id}"


class ChargingSchedule(models.Model):
    """The hub's (off-board) charging schedule of a car: several windows a day, deployed to the car on demand."""

    vehicle = models.OneToOneField(Vehicle, on_delete=models.CASCADE, primary_key=True,
                                   related_name="charging_schedule")
    enabled = models.BooleanField(default=False)
    optimized_charge = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    # When the windows as they are now were sent to the car; null: never, or changed since.
    deployed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"charging schedule of {self.vehicle_id}"


class ChargingWindow(models.Model):
    schedule = models.ForeignKey(ChargingSchedule, on_delete=models.CASCADE, related_name="windows")
    weekday = models.PositiveSmallIntegerField(validators=WEEKDAY)
    start = models.CharField(max_length=4, validators=[quarter_validator])
    # In minutes, 15-minute steps, at most a day.
    duration_minutes = models.PositiveSmallIntegerField(validators=[MinValueValidator(15), MaxValueValidator(1440)])

    class Meta:
        ordering = ["weekday", "start"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "weekday", "start"], name="vehicles_window_once"),
        ]

    def clean(self):
        if self.duration_minutes is not None and self.duration_minutes % 15:
            raise ValidationError({"duration_minutes": "a duration in 15-minute steps"})

    @property
    def start_minute(self) -> int:
        return int(self.start[:2]) * 60 + int(self.start[2:])


class PreconditionSchedule(models.Model):
    """Precondition (heat or cool) at a time of day; on the given weekdays, or once when none is given."""

    vehicle = models.ForeignKey(Vehicle, on_delete=models.CASCADE, related_name="precondition_schedules")
    start = models.CharField(max_length=4, validators=[hhmm_validator])
    # Bit i set: weekday i (Monday 0). 0: once, at the next time of day `start`.
    weekdays = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(127)])
    enabled = models.BooleanField(default=True)
    # The old service could not cancel a precondition; here it is kept, marked, for the history.
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["vehicle", "-created_at"], name="vehicles_precondition_vehicle")]

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


class NotificationSettings(models.Model):
    vehicle = models.OneToOneField(Vehicle, on_delete=models.CASCADE, primary_key=True,
                                   related_name="notification_settings")
    battery_status = models.CharField(max_length=5, choices=NotificationChannel.choices,
                                      default=NotificationChannel.NONE)
    charge_start = models.CharField(max_length=5, choices=NotificationChannel.choices,
                                    default=NotificationChannel.NONE)
    charge_end = models.CharField(max_length=5, choices=NotificationChannel.choices, default=NotificationChannel.NONE)
    charge_problem = models.CharField(max_length=5, choices=NotificationChannel.choices,
                                      default=NotificationChannel.NONE)
    low_battery = models.CharField(max_length=5, choices=NotificationChannel.choices, default=NotificationChannel.NONE)
    low_battery_reminder = models.CharField(max_length=5, choices=NotificationChannel.choices,
                                            default=NotificationChannel.NONE)
    # Both null (no quiet time) or both set: {"start": "1710", "end": "1811"}.
    do_not_disturb_start = models.CharField(max_length=4, blank=True, validators=[hhmm_validator])
    do_not_disturb_end = models.CharField(max_length=4, blank=True, validators=[hhmm_validator])
    updated_at = models.DateTimeField(auto_now=True)

    KEYS = ("battery_status", "charge_start", "charge_end", "charge_problem", "low_battery", "low_battery_reminder")

    def clean(self):
        if bool(self.do_not_disturb_start) != bool(self.do_not_disturb_end):
            raise ValidationError("do_not_disturb needs both start and end, or neither")


class QuotaBucket(models.Model):
    """Token buckets, cool-downs and refresh locks where there is no Redis (the embedded default)."""

    key = models.CharField(max_length=200, primary_key=True)
    tokens = models.FloatField(default=0.0)
    # Bucket: when `tokens` was counted; cool-down and lock: until when (UNIX seconds).
    stamp = models.FloatField(default=0.0)
    holder = models.CharField(max_length=32, blank=True)
