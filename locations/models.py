"""The charge-point catalogue: tenants (CPOs), their locations, EVSEs and connectors, tariffs, photos.

One model serves OCPI 2.2.1 and the portal contract: OCPI's `id`/`uid` are kept as `ocpi_id`/`uid`
beside the integer keys the portal and GraphQL use; OCPI's `state` is the portal's `province`;
`coordinates` are `address_lat`/`address_lng`. Writes go through `locations.services` only.
"""

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Upper

from locations.enums import ConnectorFormat, Moderation, PowerType, Status

COUNTRY_CODE = RegexValidator(r"^[A-Z]{2}$", "ISO 3166-1 alpha-2 country code, upper case (e.g. DE).")
PARTY_ID = RegexValidator(r"^[A-Z0-9]{3}$", "Three upper-case letters or digits (ISO 15118 party id).")
COUNTRY_ALPHA3 = RegexValidator(r"^[A-Z]{3}$", "ISO 3166-1 alpha-3 country code, upper case (e.g. DEU).")


class Lookup(models.Model):
    """A reference list clients filter by: the contract's codes and OCPI's enum values."""

    code = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=255, blank=True)

    class Meta:
        abstract = True
        ordering = ["id"]

    def __str__(self) -> str:
        return self.code


class ConnectorType(Lookup):
    pass


class Facility(Lookup):
    class Meta(Lookup.Meta):
        verbose_name_plural = "facilities"


class Capability(Lookup):
    class Meta(Lookup.Meta):
        verbose_name_plural = "capabilities"


class PaymentType(Lookup):
    pass


class ParkingTypeCode(Lookup):
    class Meta(Lookup.Meta):
        verbose_name = "parking type"
        db_table = "locations_parkingtype"


class ParkingRestriction(Lookup):
    pass


class Cpo(models.Model):
    """A charge-point operator: the tenant every catalogue object belongs to."""

    country_code = models.CharField(max_length=2, validators=[COUNTRY_CODE])
    party_id = models.CharField(max_length=3, validators=[PARTY_ID])
    owner_name = models.CharField("CPO owner name", max_length=255)
    contact_name = models.CharField(max_length=255, blank=True)
    contact_number = models.CharField(max_length=32, blank=True)
    contact_email = models.EmailField(blank=True)
    website = models.URLField(blank=True)
    logo = models.CharField(max_length=255, blank=True, help_text="Storage name of the uploaded logo.")
    ocpp_ready = models.BooleanField(default=False)
    auto_publish = models.BooleanField(
        default=False, help_text="Trusted: new locations and EVSEs are published without review."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_cpos"
    )
    # The CPO's OCPI credentials token C (webhooks, OCPI calls from its back end), as a SHA-256 digest.
    token_c_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "CPO"
        constraints = [
            models.UniqueConstraint(fields=["country_code", "party_id"], name="cpo_unique_party"),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.owner_name}"


class Location(models.Model):
    cpo = models.ForeignKey(Cpo, on_delete=models.PROTECT, related_name="locations",
                            db_index=False)  # location_unique_per_cpo (cpo, ocpi_id) serves it
    ocpi_id = models.CharField("OCPI id", max_length=39)  # 2.2.1: CiString(36); 2.1.1: string(39)
    publish = models.BooleanField(default=True, help_text="OCPI: the CPO allows publishing it in apps.")
    publish_allowed_to = models.JSONField(default=list, blank=True)
    moderation = models.CharField(max_length=12, choices=Moderation.choices, default=Moderation.PENDING)
    name = models.CharField(max_length=255, blank=True)
    address = models.CharField(max_length=255, help_text="OCPI allows 45 characters; see validation.")
    city = models.CharField(max_length=45, blank=True)
    postal_code = models.CharField(max_length=10, blank=True)
    province = models.CharField(max_length=20, blank=True, help_text="OCPI `state`.")
    region = models.CharField(max_length=64, blank=True)
    country = models.CharField(max_length=3, validators=[COUNTRY_ALPHA3])
    address_lat = models.FloatField("latitude", validators=[MinValueValidator(-90)])
    address_lng = models.FloatField("longitude", validators=[MinValueValidator(-180)])
    related_locations = models.JSONField(default=list, blank=True)
    directions = models.JSONField(default=list, blank=True)
    operator = models.JSONField(null=True, blank=True)
    suboperator = models.JSONField(null=True, blank=True)
    owner = models.JSONField(null=True, blank=True)
    time_zone = models.CharField(max_length=255, blank=True)
    opening_times = models.JSONField(null=True, blank=True)
    charging_when_closed = models.BooleanField(null=True, blank=True)
    images = models.JSONField(default=list, blank=True)
    energy_mix = models.JSONField(null=True, blank=True)
    facilities = models.ManyToManyField(Facility, blank=True, related_name="locations")
    parking_types = models.ManyToManyField(ParkingTypeCode, blank=True, related_name="locations")
    parking_restrictions = models.ManyToManyField(ParkingRestriction, blank=True, related_name="locations")
    last_updated = models.DateTimeField()  # location_updated_idx (last_updated, id) serves it
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cpo", "ocpi_id"], name="location_unique_per_cpo"),
            models.CheckConstraint(
                condition=models.Q(address_lat__gte=-90, address_lat__lte=90)
                & models.Q(address_lng__gte=-180, address_lng__lte=180),
                name="location_coordinates_in_range",
            ),
        ]
        indexes = [
            # OCPI sender listing: date-ranged, paginated, stable order.
            models.Index(fields=["last_updated", "id"], name="location_updated_idx"),
            # The same over what eMSPs may see, covering cpo_id (the caller's own parties are left out): a
            # page deep in the list is skipped to in the index alone, without reading each skipped row.
            models.Index(fields=["last_updated", "id"], include=["cpo"], name="location_published_updated_idx",
                         condition=models.Q(moderation="PUBLISHED")),
            models.Index(fields=["cpo", "last_updated", "id"], name="location_cpo_updated_idx"),
            # Geo search: a bounding box over latitude then longitude, visible locations only.
            models.Index(
                fields=["address_lat", "address_lng"],
                name="location_published_geo_idx",
                condition=models.Q(moderation="PUBLISHED", publish=True),
            ),
            models.Index(fields=["cpo", "moderation"], name="location_cpo_moderation_idx"),
            models.Index(Upper("province"), Upper("city"), name="location_province_city_idx"),
        ]

    def __str__(self) -> str:
        return self.name or self.address

    @property
    def country_code(self) -> str:
        return self.cpo.country_code

    @property
    def party_id(self) -> str:
        return self.cpo.party_id


class Evse(models.Model):
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="evses",
                                 db_index=False)  # evse_unique_per_location (location, uid) serves it
    uid = models.CharField(max_length=39)  # 2.2.1: CiString(36); 2.1.1: string(39)
    evse_id = models.CharField(max_length=48, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UNKNOWN)
    status_schedule = models.JSONField(default=list, blank=True)
    moderation = models.CharField(max_length=12, choices=Moderation.choices, default=Moderation.PENDING)
    capabilities = models.ManyToManyField(Capability, blank=True, related_name="evses")
    payment_types = models.ManyToManyField(PaymentType, blank=True, related_name="evses")
    parking_restrictions = models.ManyToManyField(ParkingRestriction, blank=True, related_name="evses")
    floor_level = models.CharField(max_length=4, blank=True)
    evse_lat = models.FloatField(null=True, blank=True)
    evse_lng = models.FloatField(null=True, blank=True)
    physical_reference = models.CharField(max_length=64, blank=True)
    directions = models.JSONField(default=list, blank=True)
    images = models.JSONField(default=list, blank=True)
    # Portal contract fields.
    serial_number = models.CharField(max_length=64, blank=True)
    meter_type = models.CharField(max_length=64, blank=True)
    kwh = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    current_ws_connection_id = models.CharField(max_length=128, blank=True)
    server_id = models.CharField(max_length=128, blank=True)
    last_updated = models.DateTimeField()
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "EVSE"
        constraints = [
            models.UniqueConstraint(fields=["location", "uid"], name="evse_unique_per_location"),
        ]
        indexes = [
            models.Index(fields=["location", "moderation"], name="evse_location_moderation_idx"),
            models.Index(fields=["status"], name="evse_status_idx"),
        ]

    def __str__(self) -> str:
        return self.evse_id or self.uid


class Connector(models.Model):
    evse = models.ForeignKey(Evse, on_delete=models.CASCADE, related_name="connectors")
    connector_id = models.CharField("OCPI id", max_length=36)
    standard = models.CharField(max_length=32, help_text="OCPI ConnectorType.")
    connector_type = models.ForeignKey(
        ConnectorType, null=True, blank=True, on_delete=models.PROTECT, related_name="connectors",
        help_text="The code as the client sent it (contract or OCPI).",
    )
    format = models.CharField(max_length=6, choices=ConnectorFormat.choices)
    power_type = models.CharField(max_length=16, choices=PowerType.choices)
    max_voltage = models.PositiveIntegerField()
    max_amperage = models.PositiveIntegerField()
    max_electric_power = models.PositiveIntegerField(null=True, blank=True)
    tariff_ids = models.JSONField(default=list, blank=True)
    terms_and_conditions = models.URLField(max_length=255, blank=True)
    rate_setting = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, blank=True)
    last_updated = models.DateTimeField()
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["evse", "connector_id"], name="connector_unique_per_evse"),
        ]
        indexes = [
            models.Index(fields=["standard", "max_electric_power"], name="connector_standard_power_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.evse} #{self.connector_id}"


class PublicEvses(models.Model):
    """A location's public EVSEs (PUBLISHED, not REMOVED; by id) with their connectors (by id), as one JSON
    text, for the compiled search's page (locations.graphql_compiled): one row read per location of the page
    instead of an index scan of its EVSEs and one of each EVSE's connectors. At 1,000,000 locations (20 per
    page, bench/bench_graphql.py) PostgreSQL's CPU per search went from 1.09 to 0.64-0.94 ms (the floor's
    statement, which reads the tables: 1.02-1.54 in the same runs) and the p50 over HTTP from 2.00-2.11x the
    floor's to 1.44-1.55x.

    PostgreSQL writes it, nothing else: triggers on the EVSE and connector tables (migration 0008) rewrite
    the rows of the locations whose EVSEs or connectors a statement changed, in that statement's
    transaction, whatever wrote them (services, COPY, the admin, SQL by hand). A location without a public
    EVSE has no row. SQLite keeps the table empty: its search reads the EVSEs themselves. The layout of
    `evses` (arrays, not objects: smaller, and read by position) is `graphql_compiled.EVSE_DOC` and
    `CONNECTOR_DOC`."""

    location = models.OneToOneField(Location, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                    related_name="+")
    evses = models.TextField()

    class Meta:
        verbose_name_plural = "public EVSEs"

    def __str__(self) -> str:
        return f"public EVSEs of location {self.location_id}"


class Tariff(models.Model):
    """OCPI 2.2.1 Tariff; its module (mod_tariffs) arrives with the tariffs issue."""

    cpo = models.ForeignKey(Cpo, on_delete=models.PROTECT, related_name="tariffs")
    ocpi_id = models.CharField("OCPI id", max_length=36)
    currency = models.CharField(max_length=3)
    type = models.CharField(max_length=20, blank=True)
    tariff_alt_text = models.JSONField(default=list, blank=True)
    tariff_alt_url = models.URLField(max_length=255, blank=True)
    min_price = models.JSONField(null=True, blank=True)
    max_price = models.JSONField(null=True, blank=True)
    elements = models.JSONField(default=list)
    energy_mix = models.JSONField(null=True, blank=True)
    start_date_time = models.DateTimeField(null=True, blank=True)
    end_date_time = models.DateTimeField(null=True, blank=True)
    last_updated = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cpo", "ocpi_id"], name="tariff_unique_per_cpo")]

    def __str__(self) -> str:
        return f"{self.cpo.party_id} {self.ocpi_id}"


class Photo(models.Model):
    """A photo a CPO uploaded for one of its locations (the upload API arrives with the portal issue)."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="photos")
    image = models.CharField(max_length=255, help_text="Storage name of the re-encoded image.")
    thumbnail = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    category = models.CharField(max_length=10, default="LOCATION")
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.image


class CsvImport(models.Model):
    """One CSV file a CPO uploaded, its import's progress and its report.

    The import itself is all or nothing (one transaction); this row is written beside it, so that the
    CPO can follow a long import and read its per-row report afterwards.
    """

    class Status(models.TextChoices):
        QUEUED = "QUEUED"
        RUNNING = "RUNNING"
        SUCCEEDED = "SUCCEEDED"  # committed
        FAILED = "FAILED"  # nothing stored: rows refused (see errors) or the import could not finish

    FINISHED = (Status.SUCCEEDED, Status.FAILED)

    cpo = models.ForeignKey(Cpo, on_delete=models.CASCADE, related_name="csv_imports", db_index=False)
    file = models.CharField(max_length=255, blank=True, help_text="Storage name of the upload, until imported.")
    file_name = models.CharField(max_length=255, blank=True, help_text="The name the file was uploaded as.")
    file_size = models.PositiveBigIntegerField(default=0)
    format = models.CharField(max_length=16, default="evhub")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    background = models.BooleanField(default=False, help_text="Run by a worker rather than in the upload's request.")
    attempts = models.PositiveSmallIntegerField(default=0)
    bytes_read = models.PositiveBigIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0, help_text="Rows read so far (the header not counted).")
    locations = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first errors: row, column, value, reason.")
    message = models.CharField(max_length=255, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "CSV import"
        indexes = [models.Index(fields=["cpo", "-id"], name="csvimport_cpo_newest_idx")]

    def __str__(self) -> str:
        return f"CSV import {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED
