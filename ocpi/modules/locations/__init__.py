"""OCPI Locations module (mod_locations), both roles.

- `objects`: a catalogue Location/EVSE/Connector as OCPI 2.2.1 or 2.1.1 JSON (`location_ocpi`, ...).
- `sender`: our CPO role, GET of the published catalogue (list, paginated, and single objects).
- `receiver`: our eMSP role, GET/PUT/PATCH of a connected CPO's own objects, through `locations.services`.
"""

from ocpi.modules.locations.objects import connector_ocpi, evse_ocpi, location_ocpi, location_withdrawn_ocpi

__all__ = ["connector_ocpi", "evse_ocpi", "location_ocpi", "location_withdrawn_ocpi"]
