"""The CPO portal's REST endpoints, exactly as `shared/contracts/portal-api.md` names them.

Thin views: each reads its input with a nested serializer, calls one service or selector, and answers
in the contract's envelope. CPO endpoints see only the caller's CPO: another CPO's object is a 404.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser

from emsp import accounts, logos, throttle
from emsp.models import PortalClient
from emsp.portal import ClientKeyAuthentication, ClientView, CpoCaller, CpoView, PortalError, PortalView, \
    SessionAuthentication, envelope
from emsp.parsers import StrictJSONParser
from locations import selectors, services, uploads

# --- Documentation helpers ---------------------------------------------------------------------------


class ClientKeyScheme(OpenApiAuthenticationExtension):
    target_class = "emsp.portal.ClientKeyAuthentication"
    name = "clientKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic",
                "description": "`Authorization: Basic <client key>`: a key issued by the hub's operators."}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "emsp.portal.SessionAuthentication"
    name = "accessToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "`Authorization: Bearer <access token>` from login."}


def _envelope_of(name: str, data_field: serializers.Field, example_data, message: str = "Success"):
    return {
        "response": inline_serializer(name, {
            "status": serializers.IntegerField(), "data": data_field, "message": serializers.CharField(),
        }),
        "examples": [OpenApiExample(name, value={"status": 200, "data": example_data, "message": message},
                                    response_only=True)],
    }


ERROR = inline_serializer("PortalError", {
    "status": serializers.IntegerField(), "data": serializers.JSONField(), "message": serializers.CharField(),
})
EMPTY = serializers.ListField(child=serializers.JSONField(), default=list)


def _errors(*codes: int) -> dict:
    return {code: ERROR for code in codes}


def _doc(summary: str, ok: dict, errors: tuple[int, ...], tag: str, **kwargs):
    if 401 in errors and 429 not in errors:
        # Whatever reads a credential can answer 429: past its wrong guesses an address is refused (emsp.throttle).
        errors = (*errors, 429)
    if kwargs.get("request") is not None and 415 not in errors:
        # Whatever reads a body answers 415 to one of a media type it does not parse (or of none).
        errors = (*errors, 415)
    return extend_schema(summary=summary, tags=[tag], responses={200: ok["response"], **_errors(*errors)},
                         examples=ok["examples"], **kwargs)


# --- Accounts ------------------------------------------------------------------------------------------


class RegisterView(ClientView):
    class RegisterInputSerializer(serializers.Serializer):
        username = serializers.RegexField(r"^[\w.@+-]{3,150}$", error_messages={
            "invalid": "3 to 150 letters, digits and @/./+/-/_ only"})
        cpo_owner_name = serializers.CharField(max_length=255)
        contact_name = serializers.CharField(max_length=255)
        contact_number = serializers.RegexField(r"^\+?[0-9 ()./-]{5,32}$", error_messages={
            "invalid": "a phone number such as +63 917 123 4567"})
        contact_email = serializers.EmailField()
        ocpp_ready = serializers.BooleanField()
        logo = serializers.CharField(max_length=255, required=False, allow_blank=True, help_text=(
            "The name of the file uploaded as `cpo_logo` (e.g. `cpo-logo.png`: the caller's latest upload of "
            "that name), or the `file_name` the upload returned."))
        country_code = serializers.RegexField(r"^[A-Za-z]{2}$", required=False)

    @_doc("Register a CPO", _envelope_of("Registered", serializers.CharField(), "SUCCESS"), (400, 401),
          "accounts", request=RegisterInputSerializer,
          description="Creates the CPO (party id derived from the username), its owner user and its OCPI "
                      "token C. The owner receives an email with a link to choose a password.")
    def post(self, request):
        data = _valid(self.RegisterInputSerializer, request.data)
        try:
            accounts.cpo_register(**data, client=request.auth)
        except accounts.AccountError as exc:
            raise PortalError(exc.status_code, exc.message) from None
        return envelope("SUCCESS")


class LoginView(ClientView):
    class LoginInputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    TOKENS = {"access_token": "eyJhbGciOi...", "access_expires_in": 1763719200,
              "refresh_token": "eyJhbGciOi...", "refresh_expires_in": 1764323100, "role": "CPO_OWNER"}

    @_doc("Log in", _envelope_of("Tokens", serializers.JSONField(), TOKENS, "SUCCESS"), (400, 401, 429),
          "accounts", request=LoginInputSerializer,
          description="`*_expires_in` are Unix epoch seconds of expiry. Failed logins are limited per "
                      "username and per client address; past the limit the answer is 429 with Retry-After.")
    def post(self, request):
        data = _valid(self.LoginInputSerializer, request.data)
        pair = _account_call(accounts.session_login, client_address=throttle.client_address(request),
                             client=request.auth, **data)
        return envelope(pair.as_dict(), message="SUCCESS")


class RefreshView(PortalView):
    @_doc("Refresh the tokens", _envelope_of("Refreshed", serializers.JSONField(), LoginView.TOKENS, "SUCCESS"),
          (401,), "accounts",
          parameters=[OpenApiParameter("Authorization", str, OpenApiParameter.HEADER, required=True,
                                       description="`Bearer <refresh token>`")],
          description="Rotates the refresh token: the one sent stops working, and sending it again ends "
                      "the session.")
    def get(self, request):
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise PortalError(401, "Unauthorized: send 'Authorization: Bearer <refresh token>'")
        pair = _account_call(accounts.session_refresh, refresh_token=parts[1],
                             client_address=throttle.client_address(request))
        return envelope(pair.as_dict(), message="SUCCESS")


class LogoutView(CpoView):
    @_doc("Log out", _envelope_of("LoggedOut", EMPTY, [], "Logged out successfully"), (401,), "accounts",
          request=None, description="Ends this session: its access and refresh tokens stop working.")
    def post(self, request):
        accounts.session_logout(session=request.auth.session)
        return envelope([], message="Logged out successfully")


class ChangePasswordView(CpoView):
    class ChangePasswordInputSerializer(serializers.Serializer):
        old_password = serializers.CharField(max_length=256, trim_whitespace=False)
        new_password = serializers.CharField(max_length=256, trim_whitespace=False)

    @_doc("Change the password", _envelope_of("PasswordChanged", serializers.CharField(), "SUCCESS"),
          (400, 401, 429), "accounts", request=ChangePasswordInputSerializer,
          description="Every earlier token of the user stops working; log in again. Wrong old passwords are "
                      "limited per user and per client address; past the limit the answer is 429 with "
                      "Retry-After.")
    def post(self, request):
        data = _valid(self.ChangePasswordInputSerializer, request.data)
        _account_call(accounts.password_change, user=request.user, client_address=throttle.client_address(request),
                      **data)
        return envelope("SUCCESS")


class SetPasswordView(PortalView):
    class SetPasswordInputSerializer(serializers.Serializer):
        uid = serializers.CharField(max_length=64)
        token = serializers.CharField(max_length=128)
        new_password = serializers.CharField(max_length=256, trim_whitespace=False)

    @_doc("Set the first password", _envelope_of("PasswordSet", serializers.CharField(), "SUCCESS"), (400,),
          "accounts", request=SetPasswordInputSerializer, auth=[],
          description="The link emailed at registration carries `uid` and `token`; it works once.")
    def post(self, request):
        data = _valid(self.SetPasswordInputSerializer, request.data)
        _account_call(accounts.password_set, **data)
        return envelope("SUCCESS")


class TokenCView(CpoView):
    @_doc("Issue a new OCPI token C", _envelope_of("TokenC", serializers.JSONField(), {"token_c": "..."}),
          (401,), "accounts", request=None,
          description="Returns a new token C for the caller's CPO, shown this once; the previous one stops "
                      "working. CPO back ends send it to the webhooks and OCPI endpoints.")
    def post(self, request):
        return envelope({"token_c": services.cpo_token_c_rotate(cpo=self.cpo)})


# --- CPO details and logo ------------------------------------------------------------------------------


class DetailsView(CpoView):
    DETAILS = {"party_id": "ALP", "cpo_owner_name": "Alpha Charging", "contact_name": "Ana",
               "contact_number": "+63 917 123 4567", "contact_email": "ana@alpha.example",
               "logo": "http://127.0.0.1:8000/media/logos/2026/11/3f2a.png"}

    @_doc("The caller's CPO", _envelope_of("Details", serializers.JSONField(), DETAILS), (401,), "cpo")
    def get(self, request):
        cpo = self.cpo
        return envelope({"party_id": cpo.party_id, "cpo_owner_name": cpo.owner_name,
                         "contact_name": cpo.contact_name, "contact_number": cpo.contact_number,
                         "contact_email": cpo.contact_email, "logo": uploads.storage_url(cpo.logo)})


class LogoUploadView(PortalView):
    authentication_classes = [ClientKeyAuthentication, SessionAuthentication]
    parser_classes = [MultiPartParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not isinstance(request.auth, (PortalClient, CpoCaller)):
            raise PortalError(401, "Unauthorized: send 'Authorization: Basic <client key>' "
                                   "(or 'Bearer <access token>' of a CPO user)")

    @_doc("Upload a logo", _envelope_of("LogoUploaded", EMPTY, []), (400, 401, 413, 415), "cpo",
          request={"multipart/form-data": inline_serializer("LogoUpload", {"cpo_logo": serializers.FileField()})},
          description="JPEG, PNG or WebP up to the upload limit (5 MB by default). Register (`logo`) and the "
                      "logo update then name it by the uploaded file's name (`cpo-logo.png`): the name means "
                      "the caller's own latest upload of that name (a CPO user's: its own uploads and those of "
                      "the front end it logged in through). The stored file name is also returned, in the "
                      "`X-File-Name` header and as `file_name` beside `data`, and names this file exactly.")
    def post(self, request):
        _refuse_oversized(request, files=1)
        caller = request.auth
        upload = _image_call(logos.logo_upload, file=_one_file(request, "cpo_logo"),
                             client=caller if isinstance(caller, PortalClient) else None,
                             cpo=caller.cpo if isinstance(caller, CpoCaller) else None)
        response = envelope([])
        response.data["file_name"] = upload.storage_name
        response["X-File-Name"] = upload.storage_name
        return response


class LogoSetView(CpoView):
    parser_classes = [StrictJSONParser]

    class LogoSetInputSerializer(serializers.Serializer):
        logo = serializers.CharField(max_length=255, help_text=(
            "The name of an uploaded logo file (`filename.png`), or the `file_name` its upload returned."))

    @_doc("Use an uploaded logo", _envelope_of("LogoSet", EMPTY, []), (400, 401), "cpo", request=LogoSetInputSerializer)
    def patch(self, request):
        data = _valid(self.LogoSetInputSerializer, request.data)
        try:
            logos.cpo_logo_use(cpo=self.cpo, logo=data["logo"], client=request.auth.session.client)
        except ValueError as exc:
            raise PortalError(400, f"Bad Request: {exc}") from None
        return envelope([])


# --- Location photos ------------------------------------------------------------------------------------


class PhotoUploadView(CpoView):
    parser_classes = [MultiPartParser]

    @_doc("Add photos to a location", _envelope_of("PhotosAdded", EMPTY, []), (400, 401, 404, 413, 415),
          "locations",
          request={"multipart/form-data": inline_serializer("PhotoUpload", {
              "location_photos": serializers.ListField(child=serializers.FileField()),
              "location_id": serializers.IntegerField()})},
          description="1 to 5 JPEG, PNG or WebP files per request, each up to the upload limit.")
    def post(self, request):
        _refuse_oversized(request, files=uploads.MAX_PHOTOS_PER_REQUEST)
        files = request.FILES.getlist("location_photos")
        if not 1 <= len(files) <= uploads.MAX_PHOTOS_PER_REQUEST:
            raise PortalError(400, f"Bad Request: send 1 to {uploads.MAX_PHOTOS_PER_REQUEST} files as "
                                   f"location_photos, not {len(files)}")
        location = selectors.location_of_cpo(cpo=self.cpo, location_id=request.data.get("location_id"))
        if location is None:
            raise PortalError(404, "Location not found")
        _image_call(uploads.photo_add, location=location, files=files)
        return envelope([])


class PhotoReplaceView(CpoView):
    parser_classes = [MultiPartParser]

    @_doc("Replace a photo", _envelope_of("PhotoReplaced", EMPTY, []), (400, 401, 404, 413, 415), "locations",
          request={"multipart/form-data": inline_serializer("PhotoReplace", {
              "location_photo": serializers.FileField()})})
    def patch(self, request, photo_id: str):
        photo = selectors.photo_of_cpo(cpo=self.cpo, photo_id=photo_id)
        if photo is None:
            raise PortalError(404, "Photo not found")
        _refuse_oversized(request, files=1)
        _image_call(uploads.photo_replace, photo=photo, file=_one_file(request, "location_photo"))
        return envelope([])


# --- Filters and pending counts ----------------------------------------------------------------------------


class FiltersView(ClientView):
    EXAMPLE = {name: [{"id": 1, "code": "CAFE", "description": "A cafe"}] for name in selectors.FILTER_LOOKUPS}

    @_doc("Filter values", _envelope_of("Filters", serializers.JSONField(), EXAMPLE), (401,), "filters")
    def get(self, request):
        return envelope(selectors.filters_all())


class CitiesView(ClientView):
    @_doc("Cities of a province", _envelope_of("Cities", serializers.JSONField(), [{"city": "Olongapo"}]),
          (400, 401), "filters",
          parameters=[OpenApiParameter("limit", int, description="at most 500, default 100"),
                      OpenApiParameter("offset", int, description="default 0")],
          description="Cities that have published locations in the province (case-insensitive).")
    def get(self, request, province_name: str):
        limit, offset = _page(request, default=100, cap=500)
        cities = selectors.cities_in_province(province=province_name, limit=limit, offset=offset)
        return envelope([{"city": city} for city in cities])


class PendingView(CpoView):
    @_doc("Pending locations and EVSEs",
          _envelope_of("Pending", serializers.JSONField(), [{"pending_locations": 1, "pending_evses": 2}]),
          (401,), "locations",
          description="Counts of the caller's locations and EVSEs waiting to be published, or the string "
                      "`NO_PENDING_LOCATIONS_AND_EVSES`.")
    def get(self, request):
        counts = selectors.pending_counts(cpo=self.cpo)
        if not any(counts.values()):
            return envelope("NO_PENDING_LOCATIONS_AND_EVSES")
        return envelope([counts])


# --- Shared pieces ---------------------------------------------------------------------------------------------


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _account_call(function, **kwargs):
    try:
        return function(**kwargs)
    except accounts.AccountError as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        prefix = {400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests"}[exc.status_code]
        raise PortalError(exc.status_code, f"{prefix}: {exc.message}", headers=headers) from None


def _image_call(function, **kwargs):
    try:
        return function(**kwargs)
    except uploads.ImageRejected as exc:
        raise PortalError(exc.status, exc.reason) from None
    except ValueError as exc:
        raise PortalError(400, f"Bad Request: {exc}") from None


def _one_file(request, field: str):
    files = request.FILES.getlist(field)
    if len(files) != 1:
        raise PortalError(400, f"Bad Request: send exactly one file as {field}")
    return files[0]


def _refuse_oversized(request, *, files: int) -> None:
    """Refuse a body that cannot fit before reading it (multipart adds a few KB per file)."""
    limit = settings.UPLOAD_MAX_BYTES * files + 64 * 1024
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise PortalError(413, f"Payload Too Large: each file may be at most {settings.UPLOAD_MAX_BYTES} bytes")


MAX_OFFSET = 10**9


def _page(request, *, default: int, cap: int) -> tuple[int, int]:
    try:
        limit = int(request.query_params.get("limit", default))
        offset = int(request.query_params.get("offset", 0))
    except ValueError:
        raise PortalError(400, "Bad Request: limit and offset must be integers") from None
    if limit < 1 or offset < 0:
        raise PortalError(400, "Bad Request: limit must be 1 or more and offset 0 or more")
    # Past any row, and within PostgreSQL's bigint (a larger OFFSET is a DataError, a 500).
    return min(limit, cap), min(offset, MAX_OFFSET)
