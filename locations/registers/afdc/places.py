"""Where a US station is: the country's territory, the states of ZIP prefixes, the states' time zones."""

from __future__ import annotations

from decimal import Decimal

FALLBACK_TIME_ZONE = "America/New_York"

# (lat min, lat max, lng min, lng max): the 48 states, Alaska (both sides of 180°), Hawaii,
# Puerto Rico with the Virgin Islands, Guam with the Northern Marianas, American Samoa.
US_BOXES = (
    (Decimal("24.3"), Decimal("49.5"), Decimal("-125.0"), Decimal("-66.8")),
    (Decimal("51.0"), Decimal("71.6"), Decimal("-180"), Decimal("-129.9")),
    (Decimal("51.0"), Decimal("53.1"), Decimal("172.4"), Decimal("180")),
    (Decimal("18.8"), Decimal("22.4"), Decimal("-160.3"), Decimal("-154.7")),
    (Decimal("17.6"), Decimal("18.6"), Decimal("-68.0"), Decimal("-64.5")),
    (Decimal("13.2"), Decimal("20.6"), Decimal("144.6"), Decimal("146.1")),
    (Decimal("-14.6"), Decimal("-14.1"), Decimal("-171.1"), Decimal("-168.1")),
)

# USPS three-digit ZIP prefixes (inclusive ranges) -> state or territory. AA/AE/AP: military mail.
ZIP3_STATES = (
    (5, 5, "NY"), (6, 7, "PR"), (8, 8, "VI"), (9, 9, "PR"), (10, 27, "MA"), (28, 29, "RI"),
    (30, 38, "NH"), (39, 49, "ME"), (50, 54, "VT"), (55, 55, "MA"), (56, 59, "VT"), (60, 69, "CT"),
    (70, 89, "NJ"), (90, 99, "AE"), (100, 149, "NY"), (150, 196, "PA"), (197, 199, "DE"),
    (200, 200, "DC"), (201, 201, "VA"), (202, 205, "DC"), (206, 219, "MD"), (220, 246, "VA"),
    (247, 268, "WV"), (270, 289, "NC"), (290, 299, "SC"), (300, 319, "GA"), (320, 339, "FL"),
    (340, 340, "AA"), (341, 349, "FL"), (350, 369, "AL"), (370, 385, "TN"), (386, 397, "MS"),
    (398, 399, "GA"), (400, 427, "KY"), (430, 459, "OH"), (460, 479, "IN"), (480, 499, "MI"),
    (500, 528, "IA"), (530, 549, "WI"), (550, 567, "MN"), (569, 569, "DC"), (570, 577, "SD"),
    (580, 588, "ND"), (590, 599, "MT"), (600, 629, "IL"), (630, 658, "MO"), (660, 679, "KS"),
    (680, 693, "NE"), (700, 714, "LA"), (716, 729, "AR"), (730, 732, "OK"), (733, 733, "TX"),
    (734, 749, "OK"), (750, 799, "TX"), (800, 816, "CO"), (820, 831, "WY"), (832, 838, "ID"),
    (840, 847, "UT"), (850, 865, "AZ"), (870, 884, "NM"), (885, 885, "TX"), (889, 898, "NV"),
    (900, 961, "CA"), (962, 966, "AP"), (967, 968, "HI"), (969, 969, "GU"), (970, 979, "OR"),
    (980, 994, "WA"), (995, 999, "AK"),
)

_EASTERN, _CENTRAL, _MOUNTAIN, _PACIFIC = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"
)
# States and territories that keep one time zone throughout.
STATE_ZONES = {
    **dict.fromkeys(("CT", "DE", "DC", "GA", "ME", "MD", "MA", "NH", "NJ", "NY", "NC", "OH", "PA",
                     "RI", "SC", "VT", "VA", "WV"), _EASTERN),
    **dict.fromkeys(("AL", "AR", "IL", "IA", "LA", "MN", "MS", "MO", "OK", "WI"), _CENTRAL),
    **dict.fromkeys(("CO", "MT", "NM", "UT", "WY"), _MOUNTAIN),
    **dict.fromkeys(("CA", "WA"), _PACIFIC),
    "HI": "Pacific/Honolulu",
    "PR": "America/Puerto_Rico",
    "VI": "America/St_Thomas",
    "AS": "Pacific/Pago_Pago",
}
# Split between zones: the zone of most of the people, with a warning on every row.
SPLIT_STATE_ZONES = {
    "AK": "America/Anchorage",  # the Aleutians west of 169.5° W: America/Adak
    "AZ": "America/Phoenix",  # the Navajo Nation keeps daylight saving time
    "FL": _EASTERN,  # the panhandle west of the Apalachicola: Central
    "ID": "America/Boise",  # the north: Pacific
    "IN": "America/Indiana/Indianapolis",  # the north-west and south-west corners: Central
    "KS": _CENTRAL,  # four western counties: Mountain
    "KY": _EASTERN,  # the west: Central
    "MI": "America/Detroit",  # four Upper Peninsula counties: Central
    "NE": _CENTRAL,  # the west: Mountain
    "NV": _PACIFIC,  # West Wendover: Mountain
    "ND": _CENTRAL,  # the south-west: Mountain
    "OR": _PACIFIC,  # most of Malheur County: Mountain
    "SD": _CENTRAL,  # the west: Mountain
    "TN": _CENTRAL,  # the east: Eastern
    "TX": _CENTRAL,  # El Paso and Hudspeth: Mountain
    "GU": "Pacific/Guam",  # prefix 969 also serves Palau, Micronesia and the Marshall Islands
}
