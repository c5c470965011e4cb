"""The credentials module (credentials.asciidoc), as the server: /ocpi/2.2.1/credentials, /ocpi/2.1.1/credentials.

GET answers our credentials object; POST registers a platform that holds a token A of ours; PUT updates a
registered one (new tokens both ways); DELETE unregisters it. The work is in ocpi.services.
"""

from ocpi import services
from ocpi.handshake import our_credentials
from ocpi.transport import OcpiError, OcpiView, envelope, json_body


def _not_allowed(message: str) -> OcpiError:
    return OcpiError(message, http_status=405)


class CredentialsView(OcpiView):
    module = "credentials"
    routed = False  # a configuration module: no routing headers (transport_and_format, routing headers)
    allow_token_a = True

    def get(self, request):
        # The credentials to access us are the ones the caller has just used. A portal CPO's token C is no
        # platform's: it is told the hub's own roles, not which other parties the hub speaks for.
        return envelope(our_credentials(version=self.version, token=self.caller.token, peer=self.caller.peer,
                                        with_parties=self.caller.kind != "CPO"))

    def post(self, request):
        if self.caller.kind != "A":
            raise _not_allowed("Already registered: PUT updates your credentials, DELETE unregisters")
        _, token = services.peer_credentials_register(peer=self.caller.peer, version=self.version,
                                                      data=json_body(request))
        return envelope(our_credentials(version=self.version, token=token, peer=self.caller.peer))

    def put(self, request):
        self._registered()
        _, token = services.peer_credentials_update(peer=self.caller.peer, version=self.version,
                                                    data=json_body(request))
        return envelope(our_credentials(version=self.version, token=token, peer=self.caller.peer))

    def delete(self, request):
        self._registered()
        services.peer_credentials_delete(peer=self.caller.peer)
        return envelope()

    def _registered(self) -> None:
        if self.caller.kind == "A":
            raise _not_allowed("Not registered yet: POST your credentials with the token A you were given")
        if self.caller.kind != "PEER":
            raise _not_allowed("This token belongs to a CPO account of the portal, not to an OCPI registration")
