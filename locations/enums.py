"""OCPI 2.2.1 enumerations (mod_locations) and the portal contract's extra codes.

The lookup tables are seeded from these; validation and normalisation read them too.
"""

from django.db import models


class Status(models.TextChoices):
    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


class ConnectorFormat(models.TextChoices):
    SOCKET = "SOCKET"
    CABLE = "CABLE"


class PowerType(models.TextChoices):
    AC_1_PHASE = "AC_1_PHASE"
    AC_2_PHASE = "AC_2_PHASE"
    AC_2_PHASE_SPLIT = "AC_2_PHASE_SPLIT"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class ParkingType(models.TextChoices):
    ALONG_MOTORWAY = "ALONG_MOTORWAY"
    PARKING_GARAGE = "PARKING_GARAGE"
    PARKING_LOT = "PARKING_LOT"
    ON_DRIVEWAY = "ON_DRIVEWAY"
    ON_STREET = "ON_STREET"
    UNDERGROUND_GARAGE = "UNDERGROUND_GARAGE"


class Moderation(models.TextChoices):
    """The hub's own review state: only PUBLISHED objects reach drivers' apps and eMSPs."""

    PENDING = "PENDING"
    PUBLISHED = "PUBLISHED"
    UNPUBLISHED = "UNPUBLISHED"


OCPI_CONNECTOR_TYPES = [
    ("CHADEMO", "CHAdeMO, DC"),
    ("CHAOJI", "ChaoJi, DC"),
    ("DOMESTIC_A", 'Domestic type "A", NEMA 1-15, 2 pins'),
    ("DOMESTIC_B", 'Domestic type "B", NEMA 5-15, 3 pins'),
    ("DOMESTIC_C", 'Domestic type "C", CEE 7/17, 2 pins'),
    ("DOMESTIC_D", 'Domestic type "D", 3 pins'),
    ("DOMESTIC_E", 'Domestic type "E", CEE 7/5, 3 pins'),
    ("DOMESTIC_F", 'Domestic type "F", CEE 7/4, Schuko, 3 pins'),
    ("DOMESTIC_G", 'Domestic type "G", BS 1363, Commonwealth, 3 pins'),
    ("DOMESTIC_H", 'Domestic type "H", SI-32, 3 pins'),
    ("DOMESTIC_I", 'Domestic type "I", AS 3112, 3 pins'),
    ("DOMESTIC_J", 'Domestic type "J", SEV 1011, 3 pins'),
    ("DOMESTIC_K", 'Domestic type "K", DS 60884-2-D1, 3 pins'),
    ("DOMESTIC_L", 'Domestic type "L", CEI 23-16-VII, 3 pins'),
    ("DOMESTIC_M", 'Domestic type "M", BS 546, 3 pins'),
    ("DOMESTIC_N", 'Domestic type "N", NBR 14136, 3 pins'),
    ("DOMESTIC_O", 'Domestic type "O", TIS 166-2549, 3 pins'),
    ("GBT_AC", "Guobiao GB/T 20234.2 AC"),
    ("GBT_DC", "Guobiao GB/T 20234.3 DC"),
    ("IEC_60309_2_single_16", "IEC 60309-2 industrial, single phase 16 A"),
    ("IEC_60309_2_three_16", "IEC 60309-2 industrial, three phases 16 A"),
    ("IEC_60309_2_three_32", "IEC 60309-2 industrial, three phases 32 A"),
    ("IEC_60309_2_three_64", "IEC 60309-2 industrial, three phases 64 A"),
    ("IEC_62196_T1", 'IEC 62196 Type 1 "SAE J1772"'),
    ("IEC_62196_T1_COMBO", "Combo Type 1 based, DC"),
    ("IEC_62196_T2", 'IEC 62196 Type 2 "Mennekes"'),
    ("IEC_62196_T2_COMBO", "Combo Type 2 based, DC"),
    ("IEC_62196_T3A", "IEC 62196 Type 3A"),
    ("IEC_62196_T3C", 'IEC 62196 Type 3C "Scame"'),
    ("NEMA_5_20", "NEMA 5-20, 3 pins"),
    ("NEMA_6_30", "NEMA 6-30, 3 pins"),
    ("NEMA_6_50", "NEMA 6-50, 3 pins"),
    ("NEMA_10_30", "NEMA 10-30, 3 pins"),
    ("NEMA_10_50", "NEMA 10-50, 3 pins"),
    ("NEMA_14_30", "NEMA 14-30, 3 pins, 30 A"),
    ("NEMA_14_50", "NEMA 14-50, 3 pins, 50 A"),
    ("PANTOGRAPH_BOTTOM_UP", "On-board bottom-up pantograph"),
    ("PANTOGRAPH_TOP_DOWN", "Off-board top-down pantograph"),
    ("TESLA_R", 'Tesla "Roadster" (round, 4 pins)'),
    ("TESLA_S", 'Tesla "Model S" (oval, 5 pins)'),
]
OCPI_CONNECTOR_CODES = frozenset(code for code, _ in OCPI_CONNECTOR_TYPES)

# The portal contract's connector codes, and the OCPI standard each one means. GB/T depends on the
# power type, so it is resolved in normalisation rather than here.
PORTAL_CONNECTOR_TYPES = [
    ("TYPE_1", "Type 1 (J1772)"),
    ("TYPE_2", "Type 2 (Mennekes)"),
    ("GBT", "GB/T"),
]
PORTAL_CONNECTOR_TO_OCPI = {"TYPE_1": "IEC_62196_T1", "TYPE_2": "IEC_62196_T2"}

OCPI_FACILITIES = [
    ("HOTEL", "A hotel"),
    ("RESTAURANT", "A restaurant"),
    ("CAFE", "A cafe"),
    ("MALL", "A mall or shopping center"),
    ("SUPERMARKET", "A supermarket"),
    ("SPORT", "Sport facilities: gym, field etc."),
    ("RECREATION_AREA", "A recreation area"),
    ("NATURE", "In or close to a park, nature reserve etc."),
    ("MUSEUM", "A museum"),
    ("BIKE_SHARING", "A bike/e-bike/e-scooter sharing location"),
    ("BUS_STOP", "A bus stop"),
    ("TAXI_STAND", "A taxi stand"),
    ("TRAM_STOP", "A tram stop/station"),
    ("METRO_STATION", "A metro station"),
    ("TRAIN_STATION", "A train station"),
    ("AIRPORT", "An airport"),
    ("PARKING_LOT", "A parking lot"),
    ("CARPOOL_PARKING", "A carpool parking"),
    ("FUEL_STATION", "A fuel station"),
    ("WIFI", "Wifi or other internet available"),
]
PORTAL_FACILITIES = [
    ("BANKS/ATM", "Banks or ATM"),
    ("CINEMA", "A cinema"),
    ("DRUGSTORE", "A drugstore"),
    ("GAS_STATION", "A gas station"),
    ("GROCERIES", "Groceries"),
    ("HARDWARE_SHOPS", "Hardware shops"),
    ("POOL", "A pool"),
    ("RESTAURANTS", "Restaurants"),
    ("RESTROOM", "A restroom"),
    ("SHOPS", "Shops"),
    ("WATER_SPORTS", "Water sports"),
]

OCPI_CAPABILITIES = [
    ("CHARGING_PROFILE_CAPABLE", "Supports charging profiles"),
    ("CHARGING_PREFERENCES_CAPABLE", "Supports charging preferences"),
    ("CHIP_CARD_SUPPORT", "Payment terminal supports chip cards"),
    ("CONTACTLESS_CARD_SUPPORT", "Payment terminal supports contactless cards"),
    ("CREDIT_CARD_PAYABLE", "Payment terminal accepts credit cards"),
    ("DEBIT_CARD_PAYABLE", "Payment terminal accepts debit cards"),
    ("PED_TERMINAL", "Payment terminal with a pin-code entry device"),
    ("REMOTE_START_STOP_CAPABLE", "Can be started and stopped remotely"),
    ("RESERVABLE", "Can be reserved"),
    ("RFID_READER", "Can be authorized with an RFID token"),
    ("START_SESSION_CONNECTOR_REQUIRED", "Start session requires a connector id"),
    ("TOKEN_GROUP_CAPABLE", "Supports token groups"),
    ("UNLOCK_CAPABLE", "Connectors can be unlocked remotely"),
]
PORTAL_CAPABILITIES = [
    ("CREDIT_DEBIT_PAYABLE", "Credit or debit card payable"),
    ("QR_READER", "Pay by QR code"),
    ("PRIVILEGE_AND_LOYALTY", "Privilege and loyalty programmes"),
]

PORTAL_PAYMENT_TYPES = [
    ("GCASH", "GCash"),
    ("MAYA", "Maya"),
]

OCPI_PARKING_TYPES = [
    ("ALONG_MOTORWAY", "Along a motorway, freeway, interstate or highway"),
    ("PARKING_GARAGE", "Multistorey car park"),
    ("PARKING_LOT", "A cleared area for parking vehicles"),
    ("ON_DRIVEWAY", "On the driveway of a house or building"),
    ("ON_STREET", "Parking in public space along a street"),
    ("UNDERGROUND_GARAGE", "Multistorey car park, mainly underground"),
]
PORTAL_PARKING_TYPES = [
    ("INDOOR", "Indoor parking"),
    ("OUTDOOR", "Outdoor parking"),
]

OCPI_PARKING_RESTRICTIONS = [
    ("EV_ONLY", "Reserved for electric vehicles"),
    ("PLUGGED", "Only while plugged in"),
    ("DISABLED", "Reserved for disabled people with valid ID"),
    ("CUSTOMERS", "For customers or guests only"),
    ("MOTORCYCLES", "Only for (electric) motorcycles or scooters"),
]

IMAGE_CATEGORIES = frozenset({"CHARGER", "ENTRANCE", "LOCATION", "NETWORK", "OPERATOR", "OTHER", "OWNER"})
ENERGY_SOURCE_CATEGORIES = frozenset(
    {"NUCLEAR", "GENERAL_FOSSIL", "COAL", "GAS", "GENERAL_GREEN", "SOLAR", "WIND", "WATER"}
)
ENVIRONMENTAL_IMPACT_CATEGORIES = frozenset({"NUCLEAR_WASTE", "CARBON_DIOXIDE"})

# Seeds of the lookup tables: model name -> [(code, description)], OCPI first, then the contract's.
LOOKUP_SEEDS = {
    "ConnectorType": OCPI_CONNECTOR_TYPES + PORTAL_CONNECTOR_TYPES,
    "Facility": OCPI_FACILITIES + PORTAL_FACILITIES,
    "Capability": OCPI_CAPABILITIES + PORTAL_CAPABILITIES,
    "PaymentType": PORTAL_PAYMENT_TYPES,
    "ParkingType": OCPI_PARKING_TYPES + PORTAL_PARKING_TYPES,
    "ParkingRestriction": OCPI_PARKING_RESTRICTIONS,
}
