"""Selections of every contract field, to ask for whole objects in the tests."""

LOOKUP = "{ id code description }"
CONNECTOR = ("id evse_uid connector_id standard format power_type max_voltage max_amperage max_electric_power "
             "connector_type rate_setting status date_created date_modified")
EVSE = (f"uid evse_id serial_number meter_type status cpo_location_id current_ws_connection_id server_id "
        f"date_created capabilities {LOOKUP} payment_types {LOOKUP} connectors {{ {CONNECTOR} }}")
LOCATION_SCALARS = ("id cpo_owner_id name address distance address_lat address_lng city province region "
                    "postal_code country_code images publish "
                    "date_created date_modified")
LOCATION = (f"{LOCATION_SCALARS} evses {{ {EVSE} }} facilities {LOOKUP} parking_restrictions {LOOKUP} "
            f"parking_types {LOOKUP}")

# The contract's field lists (shared/contracts/portal-api.md), to compare answers with.
CONTRACT_LOCATION = set("""id cpo_owner_id name address distance address_lat address_lng city province region
  postal_code country_code images publish date_created date_modified evses facilities
  parking_restrictions parking_types""".split())
CONTRACT_EVSE = set("""uid evse_id serial_number meter_type status cpo_location_id current_ws_connection_id server_id
  date_created capabilities payment_types connectors locations""".split())
CONTRACT_CONNECTOR = set("""id evse_uid connector_id standard format power_type max_voltage max_amperage
  max_electric_power connector_type rate_setting status date_created date_modified""".split())
