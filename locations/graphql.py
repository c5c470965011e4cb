"""GraphQL types and queries of the catalogue, named exactly as the portal contract (snake_case).

Resolvers are thin over `locations.selectors`. The view (config.graphql) authenticates the request and
leaves its caller on the context, so this module needs no other app: `context.graphql_cpo` is the CPO
of a `Bearer` caller, `context.graphql_client` the front end of a `Basic` caller, and
`context.graphql_auth_error` says why credentials that were sent were refused.

Each root resolver reads which fields the query selects and prefetches exactly those relations, so the
number of SQL queries of a request does not grow with the number of results.
"""

from __future__ import annotations

import graphene
from graphql import GraphQLError, get_named_type
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode

from locations import selectors
from locations.enums import Moderation
from locations.uploads import storage_url

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 10_000


def _error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


# --- Types -------------------------------------------------------------------------------------------

class Lookup(graphene.Interface):
    id = graphene.Int(required=True)
    code = graphene.String(required=True)
    description = graphene.String()


def _lookup_type(name: str, doc: str) -> type[graphene.ObjectType]:
    return type(name, (graphene.ObjectType,), {"Meta": type("Meta", (), {"interfaces": (Lookup,),
                                                                           "description": doc})})


Facility = _lookup_type("Facility", "A facility near a location (OCPI Facility or the contract's codes).")
Capability = _lookup_type("Capability", "A capability of an EVSE.")
PaymentType = _lookup_type("PaymentType", "A payment method an EVSE accepts.")
ParkingType = _lookup_type("ParkingType", "The kind of parking of a location.")
ParkingRestriction = _lookup_type("ParkingRestriction", "Who may park at a location.")


class Image(graphene.ObjectType):
    """OCPI Image: from the CPO's OCPI data, then the photos uploaded through the portal."""

    url = graphene.String(required=True)
    thumbnail = graphene.String()
    category = graphene.String()
    type = graphene.String()
    width = graphene.Int()
    height = graphene.Int()


class Connector(graphene.ObjectType):
    id = graphene.Int(required=True)
    evse_uid = graphene.String(required=True)
    connector_id = graphene.String(required=True)
    standard = graphene.String(required=True)
    format = graphene.String(required=True)
    power_type = graphene.String(required=True)
    max_voltage = graphene.Int(required=True)
    max_amperage = graphene.Int(required=True)
    max_electric_power = graphene.Int(description="Watts.")
    connector_type = graphene.String(description="The connector type code as the CPO sent it.")
    rate_setting = graphene.Float()
    status = graphene.String()
    date_created = graphene.DateTime(required=True)
    date_modified = graphene.DateTime(required=True)

    @staticmethod
    def resolve_evse_uid(connector, info):
        return connector.evse.uid

    @staticmethod
    def resolve_connector_type(connector, info):
        return connector.connector_type.code if connector.connector_type_id else None

    @staticmethod
    def resolve_rate_setting(connector, info):
        return None if connector.rate_setting is None else float(connector.rate_setting)

    @staticmethod
    def resolve_status(connector, info):
        return connector.status or None


class Evse(graphene.ObjectType):
    uid = graphene.String(required=True)
    evse_id = graphene.String()
    serial_number = graphene.String()
    meter_type = graphene.String()
    status = graphene.String(required=True)
    cpo_location_id = graphene.Int(required=True)
    current_ws_connection_id = graphene.String()
    server_id = graphene.String()
    date_created = graphene.DateTime(required=True)
    capabilities = graphene.List(graphene.NonNull(Capability), required=True)
    payment_types = graphene.List(graphene.NonNull(PaymentType), required=True)
    connectors = graphene.List(graphene.NonNull(Connector), required=True)
    locations = graphene.Field(lambda: Location, required=True, description="The location of this EVSE.")

    @staticmethod
    def resolve_cpo_location_id(evse, info):
        return evse.location_id

    @staticmethod
    def resolve_capabilities(evse, info):
        return selectors.shaped(evse, "capabilities")

    @staticmethod
    def resolve_payment_types(evse, info):
        return selectors.shaped(evse, "payment_types")

    @staticmethod
    def resolve_connectors(evse, info):
        return selectors.shaped(evse, "connectors")

    @staticmethod
    def resolve_locations(evse, info):
        return evse.location


class Location(graphene.ObjectType):
    id = graphene.Int(required=True)
    cpo_owner_id = graphene.Int(required=True)
    name = graphene.String()
    address = graphene.String(required=True)
    distance = graphene.Float(description="Kilometres from the searched point; only in find_ev_filter_locations.")
    address_lat = graphene.Float(required=True)
    address_lng = graphene.Float(required=True)
    city = graphene.String()
    province = graphene.String()
    region = graphene.String()
    postal_code = graphene.String()
    country_code = graphene.String(required=True, description="ISO 3166-1 alpha-2 country of the CPO (OCPI).")
    images = graphene.List(graphene.NonNull(graphene.String), required=True,
                           description="URLs of the location's images: its OCPI images first, then the photos "
                                       "uploaded through the portal (the contract's leaf list).")
    image_details = graphene.List(graphene.NonNull(Image), required=True,
                                  description="The same images as `images`, in the same order, as OCPI Image "
                                              "objects (url, thumbnail, category, type, width, height).")
    publish = graphene.Boolean(required=True, description="Visible to drivers: published by the hub and the CPO.")
    date_created = graphene.DateTime(required=True)
    date_modified = graphene.DateTime(required=True)
    evses = graphene.List(graphene.NonNull(Evse), required=True)
    facilities = graphene.List(graphene.NonNull(Facility), required=True)
    parking_restrictions = graphene.List(graphene.NonNull(ParkingRestriction), required=True)
    parking_types = graphene.List(graphene.NonNull(ParkingType), required=True)

    @staticmethod
    def resolve_cpo_owner_id(location, info):
        return location.cpo_id

    @staticmethod
    def resolve_country_code(location, info):
        return location.cpo.country_code

    @staticmethod
    def resolve_distance(location, info):
        distance = getattr(location, "distance", None)
        return None if distance is None else round(distance, 3)

    @staticmethod
    def resolve_publish(location, info):
        return location.moderation == Moderation.PUBLISHED and location.publish

    @staticmethod
    def resolve_images(location, info):
        return [image["url"] for image in _location_images(location)]

    @staticmethod
    def resolve_image_details(location, info):
        return [Image(**{key: image.get(key) for key in Image._meta.fields}) for image in _location_images(location)]

    @staticmethod
    def resolve_evses(location, info):
        evses = getattr(location, selectors.SHAPED + "evses", None)
        if evses is not None:
            return evses
        if "evses" in getattr(location, "_prefetched_objects_cache", {}):
            return location.evses.all()
        # Not prefetched (a shape the planner missed): still never show drivers what they may not see.
        return selectors.public_evses().filter(location=location) if _is_public(info) else location.evses.all()

    @staticmethod
    def resolve_facilities(location, info):
        return selectors.shaped(location, "facilities")

    @staticmethod
    def resolve_parking_restrictions(location, info):
        return selectors.shaped(location, "parking_restrictions")

    @staticmethod
    def resolve_parking_types(location, info):
        return selectors.shaped(location, "parking_types")


def _location_images(location) -> list[dict]:
    """OCPI images first, then the uploaded photos: one order for `images` and `image_details`."""
    images = [image for image in location.images or [] if isinstance(image, dict) and image.get("url")]
    for photo in selectors.shaped(location, "photos"):
        images.append({
            "url": storage_url(photo.image), "thumbnail": storage_url(photo.thumbnail) or None,
            "category": photo.category, "type": photo.content_type.rsplit("/", 1)[-1],
            "width": photo.width, "height": photo.height,
        })
    return images


# --- What a query selects, for prefetching ------------------------------------------------------------

def _selected_fields(info) -> dict[str, set[str]]:
    """Field names selected under this root field, by GraphQL type name (fragments followed)."""
    by_type: dict[str, set[str]] = {}
    seen_fragments: set[str] = set()

    def walk(selection_set, parent_type) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                field = parent_type.fields.get(name) if hasattr(parent_type, "fields") else None
                if field is None:
                    continue
                by_type.setdefault(parent_type.name, set()).add(name)
                if selection.selection_set:
                    walk(selection.selection_set, get_named_type(field.type))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                walk(selection.selection_set,
                     info.schema.get_type(condition.name.value) if condition else parent_type)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen_fragments:
                seen_fragments.add(selection.name.value)
                fragment = info.fragments.get(selection.name.value)
                if fragment is not None:
                    walk(fragment.selection_set, info.schema.get_type(fragment.type_condition.name.value))

    for node in info.field_nodes:
        if node.selection_set:
            walk(node.selection_set, get_named_type(info.return_type))
    return by_type


# The model fields each GraphQL field reads (relations: none of their own; the keys are always read).
EVSE_FIELDS = {"uid": ("uid",), "evse_id": ("evse_id",), "serial_number": ("serial_number",),
               "meter_type": ("meter_type",), "status": ("status",), "cpo_location_id": ("location",),
               "current_ws_connection_id": ("current_ws_connection_id",), "server_id": ("server_id",),
               "date_created": ("date_created",), "capabilities": (), "payment_types": (), "connectors": (),
               "locations": ("location",)}
LOCATION_FIELDS = {"id": (), "cpo_owner_id": ("cpo",), "name": ("name",), "address": ("address",), "distance": (),
                   "address_lat": ("address_lat",), "address_lng": ("address_lng",), "city": ("city",),
                   "province": ("province",), "region": ("region",), "postal_code": ("postal_code",),
                   "country_code": ("cpo",), "images": ("images",), "image_details": ("images",),
                   "publish": ("moderation", "publish"),
                   "date_created": ("date_created",), "date_modified": ("date_modified",), "evses": (),
                   "facilities": (), "parking_restrictions": (), "parking_types": ()}
CONNECTOR_FIELDS = {"id": (), "evse_uid": ("evse",), "connector_id": ("connector_id",), "standard": ("standard",),
                    "format": ("format",), "power_type": ("power_type",), "max_voltage": ("max_voltage",),
                    "max_amperage": ("max_amperage",), "max_electric_power": ("max_electric_power",),
                    "connector_type": ("connector_type",), "rate_setting": ("rate_setting",),
                    "status": ("status",), "date_created": ("date_created",), "date_modified": ("date_modified",)}


def _model_fields(selected: set[str], known: dict[str, tuple[str, ...]]) -> frozenset[str] | None:
    """The model fields behind the selected GraphQL fields; None (read them all) for a field not mapped."""
    if not selected <= known.keys():
        return None
    return frozenset(column for name in selected for column in known[name])


def _shape(info) -> selectors.Shape:
    fields = _selected_fields(info)
    location, evse, connector = fields.get("Location", set()), fields.get("Evse", set()), fields.get("Connector", set())
    evse_fields = _model_fields(evse, EVSE_FIELDS)
    if evse_fields is not None and "evse_uid" in connector:  # the connector shows its EVSE's uid
        evse_fields |= {"uid"}
    return selectors.Shape(
        evse_fields=evse_fields, connector_fields=_model_fields(connector, CONNECTOR_FIELDS),
        location_fields=_model_fields(location, LOCATION_FIELDS),
        location=frozenset(
            {name for name in ("evses", "facilities", "parking_types", "parking_restrictions") if name in location}
            | ({"photos"} if location & {"images", "image_details"} else set())
            | ({"cpo"} if "country_code" in location else set())),
        evse=frozenset({name for name in ("connectors", "capabilities", "payment_types") if name in evse}
                       | ({"location"} if "locations" in evse else set())),
        connector=frozenset({"connector_type"} if "connector_type" in connector else set()),
    )


# --- Callers and arguments --------------------------------------------------------------------------

def _is_public(info) -> bool:
    return getattr(info.context, "graphql_cpo", None) is None


def _caller_cpo(info):
    cpo = getattr(info.context, "graphql_cpo", None)
    if cpo is None:
        reason = getattr(info.context, "graphql_auth_error", None) or "no access token was sent"
        raise _error(f"Unauthorized: {reason}; this query needs 'Authorization: Bearer <access token>' "
                     "of a CPO user", "UNAUTHENTICATED")
    return cpo


def _require_client(info) -> None:
    if getattr(info.context, "graphql_client", None) is None:
        reason = getattr(info.context, "graphql_auth_error", None) or "no client key was sent"
        raise _error(f"Unauthorized: {reason}; this query needs 'Authorization: Basic <client key>'",
                     "UNAUTHENTICATED")


def _page(limit: int | None, offset: int | None) -> slice:
    limit = DEFAULT_LIMIT if limit is None else limit
    offset = 0 if offset is None else offset
    if limit < 1:
        raise _error(f"limit must be 1 or more (at most {MAX_LIMIT} are returned), not {limit}", "BAD_USER_INPUT")
    if not 0 <= offset <= MAX_OFFSET:
        raise _error(f"offset must be between 0 and {MAX_OFFSET}, not {offset}", "BAD_USER_INPUT")
    return slice(offset, offset + min(limit, MAX_LIMIT))


def _searched(call):
    try:
        return call()
    except selectors.SearchError as exc:
        raise _error(str(exc), "BAD_USER_INPUT") from None


def _page_args() -> dict:
    return {"limit": graphene.Int(description=f"Default {DEFAULT_LIMIT}, at most {MAX_LIMIT}."),
            "offset": graphene.Int(description=f"At most {MAX_OFFSET}.")}


def _search_args() -> dict:
    codes = lambda: graphene.List(graphene.NonNull(graphene.String))  # noqa: E731
    return {
        "lat": graphene.Float(), "lng": graphene.Float(),
        "distance": graphene.Float(description=f"Radius in km (default {selectors.DEFAULT_DISTANCE_KM:g}, "
                                               f"at most {selectors.MAX_DISTANCE_KM:g}); needs lat and lng."),
        "city": graphene.String(), "province": graphene.String(),
        "facilities": codes(), "capabilities": codes(), "payment_types": codes(), "parking_types": codes(),
        "connector_types": codes(),
        "min_power": graphene.Int(description="Watts: an EVSE with a connector of at least this power."),
        "status": graphene.String(description="An EVSE with this status, e.g. AVAILABLE."),
        **_page_args(),
    }


def _search_filters(args: dict) -> dict:
    args = dict(args)
    args.pop("limit", None), args.pop("offset", None)
    if "distance" in args:
        args["distance_km"] = args.pop("distance")
    return args


def _search(args: dict):
    return _searched(lambda: selectors.locations_search(**_search_filters(args)))


# --- Queries -----------------------------------------------------------------------------------------

class LocationQueries(graphene.ObjectType):
    evse = graphene.List(
        graphene.NonNull(Evse), location_name=graphene.String(),
        order_by=graphene.String(description='"location" or "date_created" (default).'),
        order=graphene.String(description='"ASC" or "DESC" (default).'), **_page_args(),
        description="Bearer: the EVSEs of the caller's CPO, each with its location.")
    locations = graphene.List(graphene.NonNull(Location), **_page_args(),
                              description="Bearer: the locations of the caller's CPO, newest first.")
    location = graphene.Field(Location, id=graphene.Int(required=True),
                              description="Bearer: one location of the caller's CPO.")
    find_ev_locations = graphene.List(graphene.NonNull(Location), **_page_args(),
                                      description="Basic: published locations, by id.")
    find_ev_locations_count = graphene.Int(description="Basic: how many locations find_ev_locations pages over.")
    find_ev_filter_locations = graphene.List(
        graphene.NonNull(Location), **_search_args(),
        description="Basic: published locations matching every filter given; nearest first given lat/lng.")
    find_ev_filter_locations_count = graphene.Int(
        **_search_args(),
        description="Basic: how many locations find_ev_filter_locations matches (limit/offset ignored).")

    @staticmethod
    def resolve_evse(root, info, location_name=None, order_by=None, order=None, limit=None, offset=None):
        cpo = _caller_cpo(info)
        page = _page(limit, offset)
        evses = _searched(lambda: selectors.evses_of_cpo(
            cpo=cpo, location_name=location_name, order_by=order_by or "date_created", order=order or "DESC"))
        return list(selectors.evses_shaped(evses, shape=_shape(info), public=False)[page])

    @staticmethod
    def resolve_locations(root, info, limit=None, offset=None):
        cpo = _caller_cpo(info)
        page = _page(limit, offset)
        return _shaped_page(selectors.locations_of_cpo(cpo=cpo), info, page, public=False)

    @staticmethod
    def resolve_location(root, info, id):
        cpo = _caller_cpo(info)
        found = _shaped_page(selectors.locations_of_cpo(cpo=cpo).filter(pk=id), info, slice(0, 1), public=False)
        if not found:
            # The same answer for another CPO's location as for none at all.
            raise _error(f"Location {id} not found", "NOT_FOUND")
        return found[0]

    @staticmethod
    def resolve_find_ev_locations(root, info, limit=None, offset=None):
        _require_client(info)
        page = _page(limit, offset)
        return _shaped_page(selectors.visible_locations().order_by("id"), info, page, public=True)

    @staticmethod
    def resolve_find_ev_locations_count(root, info):
        _require_client(info)
        return selectors.visible_locations().count()

    @staticmethod
    def resolve_find_ev_filter_locations(root, info, **args):
        _require_client(info)
        page = _page(args.get("limit"), args.get("offset"))
        shape = _shape(info)
        return _searched(lambda: selectors.locations_search_page(
            shape=shape, offset=page.start, limit=page.stop - page.start, **_search_filters(args)))

    @staticmethod
    def resolve_find_ev_filter_locations_count(root, info, **args):
        _require_client(info)
        return _search(args).order_by().count()


def _shaped_page(queryset, info, page: slice, *, public: bool) -> list:
    return list(selectors.locations_shaped(queryset, shape=_shape(info), public=public)[page])


__all__ = ["Connector", "Evse", "Location", "LocationQueries"]
