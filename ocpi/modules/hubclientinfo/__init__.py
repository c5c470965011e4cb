"""OCPI HubClientInfo module (mod_hub_client_info), 2.2.1 only, both roles.

- `objects`: a connected party as a ClientInfo object, and a pushed ClientInfo read and checked.
- `views`: our Sender (as a hub: the list of the parties connected to us) and our Receiver (what a hub we
  are connected to reports about the parties behind it), routed by `routes`.
- `push`: the module on the outbox: a party's ClientInfo is pushed to the other connected peers when its
  status changes (ocpi.hub.peer_status_record).
"""
