"""The template the portal offers for download: the evhub header and one real-looking location."""

from __future__ import annotations

import csv
import io

from locations.csv_import.evhub import COLUMNS

_TEMPLATE_LOCATION = {
    "location_id": "BER-ALEX-01", "name": "Ladepark Alexanderplatz", "address": "Alexanderstraße 7",
    "city": "Berlin", "postal_code": "10178", "province": "Berlin", "country": "DE", "latitude": "52.521918",
    "longitude": "13.413215", "time_zone": "Europe/Berlin", "parking_type": "PARKING_GARAGE",
    "facilities": "MALL|TRAIN_STATION", "parking_restrictions": "EV_ONLY",
}
_TEMPLATE_CONNECTORS = [
    {"evse_uid": "BER-ALEX-01-1", "evse_id": "DE*ABC*E0000101", "evse_status": "AVAILABLE",
     "capabilities": "REMOTE_START_STOP_CAPABLE|RFID_READER|CONTACTLESS_CARD_SUPPORT",
     "serial_number": "HPC-300-1842", "meter_type": "Eichrechtskonform", "connector_id": "1",
     "standard": "IEC_62196_T2_COMBO", "format": "CABLE", "power_type": "DC", "max_voltage": "920",
     "max_amperage": "500", "max_electric_power": "300000", "tariff_ids": "DC-HPC"},
    {"evse_uid": "BER-ALEX-01-2", "evse_id": "DE*ABC*E0000102", "evse_status": "AVAILABLE",
     "capabilities": "REMOTE_START_STOP_CAPABLE|RFID_READER", "serial_number": "AC-22-7731",
     "meter_type": "Eichrechtskonform", "connector_id": "1", "standard": "TYPE_2", "format": "SOCKET",
     "power_type": "AC_3_PHASE", "max_voltage": "230", "max_amperage": "32", "max_electric_power": "22000",
     "tariff_ids": "AC-22"},
]


def csv_template() -> str:
    """The header and two rows of one location (a DC and an AC EVSE), ready to fill in."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for connector in _TEMPLATE_CONNECTORS:
        writer.writerow({**_TEMPLATE_LOCATION, **connector})
    return out.getvalue()
