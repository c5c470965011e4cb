"""What the registers since 2021 say beyond place and plugs: status, opening hours, payment, parking.

Each is mapped to OCPI only where the register's value says one thing OCPI can say too; a value
that could mean several (a free text, "Eingeschränkt" without its hours) is left out, never guessed.

* Status: "In Betrieb" is UNKNOWN (a static register knows nothing of the moment, as for the UK
  register's "In service"), "In Wartung" INOPERATIVE (temporarily unavailable, not broken),
  "Außer Betrieb" OUTOFORDER, planned or under construction PLANNED, decommissioned REMOVED and
  not published.
* Öffnungszeiten: "247" (or "24/7") is `twentyfourseven`; otherwise the weekdays
  ("Montag; Dienstag; ...") and times of day ("08:00-18:00; ...", one for all days or one each)
  become `regular_hours`, a period over midnight split in two, 24:00 written 23:59 as OCPI's
  pattern asks. All seven days round the clock is `twentyfourseven`. "Keine Angabe": no hours.
* Bezahlsysteme: RFID card -> RFID_READER; credit or debit card by NFC -> *_CARD_PAYABLE and
  CONTACTLESS_CARD_SUPPORT, by card reader -> *_CARD_PAYABLE and CHIP_CARD_SUPPORT. Online
  payment, Plug & Charge, cash, free and "other" have no OCPI 2.2.1 capability.
* Informationen zum Parkraum: "Keine Beschränkung" is no restriction; customers only -> CUSTOMERS
  (a parking restriction of every EVSE), and the kind of car park where the text names exactly one
  (Tiefgarage, Parkhaus, Parkplatz, Straßenrand) -> the location's `parking_type`.
"""

from __future__ import annotations

import re

from locations.registers.bnetza.layout import Layout
from locations.registers.common import Issues, clean

_STATUSES = {  # case-folded ("ß" -> "ss") -> (OCPI EVSE status, publish)
    "in betrieb": ("UNKNOWN", True),
    "in wartung": ("INOPERATIVE", True),
    "vorübergehend ausser betrieb": ("INOPERATIVE", True),
    "ausser betrieb": ("OUTOFORDER", True),
    "gestört": ("OUTOFORDER", True),
    "in planung": ("PLANNED", True),
    "geplant": ("PLANNED", True),
    "im bau": ("PLANNED", True),
    "in bau": ("PLANNED", True),
    "stillgelegt": ("REMOVED", False),
    "dauerhaft ausser betrieb": ("REMOVED", False),
    "abgebaut": ("REMOVED", False),
}

_ROUND_THE_CLOCK = frozenset({"247", "24/7", "24h", "24std", "24stunden", "rundumdieuhr"})
_NO_HOURS = frozenset({"", "keineangabe", "keineangaben"})
_WEEKDAYS = {
    "montag": 1, "mo": 1, "dienstag": 2, "di": 2, "mittwoch": 3, "mi": 3, "donnerstag": 4, "do": 4,
    "freitag": 5, "fr": 5, "samstag": 6, "sa": 6, "sonnabend": 6, "sonntag": 7, "so": 7,
}
_DAY_RANGE = re.compile(r"(\w+)\.?\s*(?:-|–|bis)\s*(\w+)\.?")
_PERIOD = re.compile(r"(\d{1,2})[:.](\d{2})\s*(?:-|–|bis)\s*(\d{1,2})[:.](\d{2})")
_PERIOD_GLUE = re.compile(r"[\s,/&+]|und|uhr")
_CLOSED = frozenset({"geschlossen", "-"})
_LAST_MINUTE = "23:59"

_PAYMENTS = {  # case-folded, spaces collapsed -> OCPI capabilities
    "rfid-karte": ("RFID_READER",),
    "rfid karte": ("RFID_READER",),
    "kreditkarte (nfc)": ("CREDIT_CARD_PAYABLE", "CONTACTLESS_CARD_SUPPORT"),
    "debitkarte (nfc)": ("DEBIT_CARD_PAYABLE", "CONTACTLESS_CARD_SUPPORT"),
    "kreditkarte (lesegerät)": ("CREDIT_CARD_PAYABLE", "CHIP_CARD_SUPPORT"),
    "debitkarte (lesegerät)": ("DEBIT_CARD_PAYABLE", "CHIP_CARD_SUPPORT"),
    # Known, but no OCPI 2.2.1 capability says them.
    "onlinezahlungsverfahren": (),
    "plug & charge": (),
    "plug and charge": (),
    "bargeld": (),
    "kostenlos": (),
    "sonstige": (),
}
_CAPABILITY_ORDER = ("CHIP_CARD_SUPPORT", "CONTACTLESS_CARD_SUPPORT", "CREDIT_CARD_PAYABLE", "DEBIT_CARD_PAYABLE",
                     "RFID_READER")

_PARKING_RESTRICTIONS = (("kunde", "CUSTOMERS"), ("gäste", "CUSTOMERS"), ("mieter", "CUSTOMERS"))
_PARKING_TYPES = (
    ("tiefgarage", "UNDERGROUND_GARAGE"),
    ("parkhaus", "PARKING_GARAGE"),
    ("parkplatz", "PARKING_LOT"),
    ("strassenrand", "ON_STREET"),
    ("öffentlicher strassenraum", "ON_STREET"),
)


# --------------------------------------------------------------------------- status


def status(cells: list[str], layout: Layout, issues: Issues) -> tuple[str, bool]:
    """(EVSE status, publish) from "Status"; (UNKNOWN, True) where the register has none."""
    if not layout.has("status"):
        return "UNKNOWN", True
    text = clean(layout.cell(cells, "status"))
    if not text:
        return "UNKNOWN", True
    known = _STATUSES.get(text.casefold())
    if known is None:
        issues.warn(layout.title("status"), text, "unknown status, read as UNKNOWN")
        return "UNKNOWN", True
    return known


# --------------------------------------------------------------------------- opening hours


def opening_times(cells: list[str], layout: Layout, issues: Issues) -> dict | None:
    text = clean(layout.cell(cells, "opening"))
    key = text.casefold().replace(" ", "")
    if key in _ROUND_THE_CLOCK:
        return {"twentyfourseven": True}
    days, hours = clean(layout.cell(cells, "opening_days")), clean(layout.cell(cells, "opening_hours"))
    if days or hours:
        regular = regular_hours(days, hours)
        if regular is None:
            columns = "/".join(layout.title(role) for role in ("opening_days", "opening_hours") if layout.has(role))
            issues.warn(columns, f"{days} / {hours}", "opening hours not readable, left out")
            return None
        if _round_the_clock(regular):
            return {"twentyfourseven": True}
        return {"twentyfourseven": False, "regular_hours": regular} if regular else None
    if key not in _NO_HOURS:
        issues.warn(layout.title("opening"), text, "opening hours without weekdays and times, left out")
    return None


def regular_hours(days_text: str, hours_text: str) -> list[dict] | None:
    """OCPI RegularHours from "Montag; Dienstag" and "08:00-18:00; 09:00-12:00"; None when unsure."""
    day_tokens = [token for token in re.split(r"\s*;\s*", days_text) if token]
    hour_tokens = [token for token in re.split(r"\s*;\s*", hours_text) if token]
    if not day_tokens or not hour_tokens:
        return None
    if len(hour_tokens) == 1:
        hour_tokens *= len(day_tokens)
    if len(hour_tokens) != len(day_tokens):
        return None
    periods: set[tuple[int, str, str]] = set()
    for day_token, hour_token in zip(day_tokens, hour_tokens):
        weekdays, spans = _weekdays(day_token), _spans(hour_token)
        if weekdays is None or spans is None:
            return None
        for weekday in weekdays:
            for begin, end in spans:
                found = _periods(weekday, begin, end)
                if found is None:
                    return None
                periods.update(found)
    return [{"weekday": day, "period_begin": begin, "period_end": end} for day, begin, end in sorted(periods)]


def _weekdays(token: str) -> list[int] | None:
    key = token.casefold().strip(" .")
    if key in _WEEKDAYS:
        return [_WEEKDAYS[key]]
    match = _DAY_RANGE.fullmatch(key)
    if match and match[1] in _WEEKDAYS and match[2] in _WEEKDAYS:
        first, last = _WEEKDAYS[match[1]], _WEEKDAYS[match[2]]
        return [(first - 1 + step) % 7 + 1 for step in range((last - first) % 7 + 1)]
    return None


def _spans(token: str) -> list[tuple[str, str]] | None:
    """("08:00", "12:00") per period of a day's times; [] for a closed day; None if anything is left over."""
    key = token.casefold()
    if key.strip(" .") in _CLOSED:
        return []
    spans = []
    for match in _PERIOD.finditer(key):
        hours_begin, minutes_begin, hours_end, minutes_end = (int(part) for part in match.groups())
        if hours_begin > 23 or hours_end > 24 or minutes_begin > 59 or minutes_end > 59:
            return None
        if hours_end == 24 and minutes_end:
            return None
        spans.append((f"{hours_begin:02d}:{minutes_begin:02d}", f"{hours_end:02d}:{minutes_end:02d}"))
    if not spans or _PERIOD_GLUE.sub("", _PERIOD.sub("", key)):
        return None
    return spans


def _periods(weekday: int, begin: str, end: str) -> list[tuple[int, str, str]] | None:
    if end in ("24:00", "00:00"):  # till midnight; OCPI's pattern has no 24:00
        end = _LAST_MINUTE if begin != "00:00" or end == "24:00" else "00:00"
    if end > begin:
        return [(weekday, begin, end)]
    if begin == end == "00:00":
        return [(weekday, "00:00", _LAST_MINUTE)]
    if end == begin:
        return None  # 08:00-08:00: a day round the clock from 08:00, or a typo
    # Over midnight (22:00-06:00): OCPI wants the end after the beginning, so two periods.
    return [(weekday, begin, _LAST_MINUTE), (weekday % 7 + 1, "00:00", end)]


def _round_the_clock(regular: list[dict]) -> bool:
    days = {period["weekday"] for period in regular
            if (period["period_begin"], period["period_end"]) == ("00:00", _LAST_MINUTE)}
    return days == set(range(1, 8))


# --------------------------------------------------------------------------- payment and parking


def capabilities(cells: list[str], layout: Layout, issues: Issues) -> list[str]:
    text = clean(layout.cell(cells, "payment"))
    found: set[str] = set()
    for token in (clean(token) for token in text.split(";")):
        if not token:
            continue
        known = _PAYMENTS.get(token.casefold())
        if known is None:
            issues.warn(layout.title("payment"), token, "unknown payment system, ignored")
            continue
        found.update(known)
    return [capability for capability in _CAPABILITY_ORDER if capability in found]


def parking(cells: list[str], layout: Layout) -> tuple[str | None, list[str]]:
    """(the location's parking type, the EVSEs' parking restrictions) from "Informationen zum Parkraum"."""
    text = clean(layout.cell(cells, "parking")).casefold()
    if not text:
        return None, []
    restrictions = sorted({value for word, value in _PARKING_RESTRICTIONS if word in text})
    types = {value for word, value in _PARKING_TYPES if word in text}
    return (types.pop() if len(types) == 1 else None), restrictions
