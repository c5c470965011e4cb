"""`find_ev_filter_locations` answered by one SQL statement, without graphene's executor (issue 14).

An app's map asks the same search again and again, with a new point: 20 locations, their EVSEs and
connectors. Through graphene that page is ~600 fields resolved one by one (~2,000 with the contract's whole
query), ~150 model instances and a JSON encoding: ~2.5 ms of Python, more than the statement itself. Here a
query that selects only what one statement can give is compiled once per query text into
- the location columns it reads and how each becomes its JSON value (the resolvers' own conversions:
  `distance` rounded to metres, `publish`, dates as ISO 8601, `images` from the OCPI images and the
  photos' storage URLs), and
- the public EVSEs with their connectors: read from each location's PublicEvses row (models.PublicEvses,
  which PostgreSQL's triggers keep) and made into the selected fields by a function written for the
  selection (`_evses_projection`), or, when the selection asks for more than that row holds (an EVSE's
  lookups, a connector's `connector_type`), JSON expressions over the EVSE and connector tables, keyed by
  the query's response names (aliases included), made by PostgreSQL inside the page statement, as are
  the location's lookups;
and each request is its arguments, one prepared statement (`selectors.locations_search_page_rows`, the
nearest-first page of `locations_search_page`: the same rows, order and distances) and a dict per location.
The contract's whole query (shared/seeds) compiles; `image_details` and an EVSE's `locations` do not.

Anything else takes graphene's path, which is the reference: a field not listed here, a directive, more
than one root field, an argument or variable the schema refuses, a caller without a client key, a search
the selectors refuse or take another way (no point, SQLite), a value the schema's types would refuse (a
null in a non-null field, an integer past 32 bits). Those requests are answered, errors included, exactly
as before; `tests/graphql/test_compiled.py` checks that both paths answer the same JSON.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Callable

import orjson
from graphql import GraphQLError, get_named_type, get_operation_ast, is_non_null_type
from graphql.execution.collect_fields import collect_fields, collect_sub_fields
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.language import DocumentNode, FragmentDefinitionNode, OperationType, Visitor, visit

from locations import graphql as types
from locations import selectors
from locations.enums import Moderation
from locations.models import Connector, ConnectorType, Evse, Location
from locations.uploads import storage_url

logger = logging.getLogger(__name__)

ROOT_FIELD = "find_ev_filter_locations"
INT_MIN, INT_MAX = -(2 ** 31), 2 ** 31 - 1  # GraphQL's Int


def _column(model, name: str) -> str:
    return model._meta.get_field(name).column


# Location fields: (the model fields read, how the value is made from the row). A row getter is given the
# row's values by column name; `_CPO`: the page joins the CPO. Each is made of a Python expression over the
# row's values (`_inline`), which `_builder` writes into the page's loop (a getter without one is called with
# the row as a dict).
_CPO = "_cpo_country_code"
PHOTOS = "_photos"  # the page's photos' storage names (images: `_images_of`)


def _inline(expression: str, *columns: str, **names):
    """The getter of `expression` over the row's `columns` (`{0}`, `{1}`: their values), `names` the functions
    and constants it calls: a function of the row as a dict, which also carries the expression for
    `_builder` (`inline`), so that each getter is written once."""
    text = "lambda row: " + expression.format(*(f"row[{column!r}]" for column in columns))
    getter = eval(text, dict(names))  # noqa: S307 - the text is ours: templates and column names
    getter.inline = (expression, columns, names)
    return getter


def _plain(column: str):
    return _inline("{0}", column)


def _checked_int(value):
    if value is not None and not INT_MIN <= value <= INT_MAX:
        raise _Fallback
    return value


def _int(column: str):
    return _inline("_checked_int({0})", column, _checked_int=_checked_int)


def _iso(column: str):
    return _inline("(None if {0} is None else {0}.isoformat())", column)


_distance = _inline("(None if {0} is None else round({0}, 3))", "distance")


def _publish_of(moderation: str, publish: str):
    return _inline("({0} == _PUBLISHED and {1})", moderation, publish, _PUBLISHED=str(Moderation.PUBLISHED))


_publish = _publish_of(_column(Location, "moderation"), _column(Location, "publish"))


def _image_urls(images, photos: str) -> list[str]:
    """`resolve_images`: the URLs of the location's OCPI images (the JSON column), then of its photos."""
    urls = []
    for image in images or ():
        if isinstance(image, dict) and image.get("url"):
            if not isinstance(image["url"], str):
                raise _Fallback  # graphene's String would write it its own way
            urls.append(image["url"])
    urls.extend(storage_url(name) for name in orjson.loads(photos))
    return urls


def _images_of(column: str):
    return _inline("_image_urls({0}, {1})", column, PHOTOS, _image_urls=_image_urls)


LOCATION_FIELDS: dict[str, tuple[tuple[str, ...], Callable]] = {
    "id": ((), _int("id")),
    "cpo_owner_id": (("cpo",), _int(_column(Location, "cpo"))),
    **{name: ((name,), _plain(_column(Location, name)))
       for name in ("name", "address", "address_lat", "address_lng", "city", "province", "region", "postal_code")},
    "date_created": (("date_created",), _iso(_column(Location, "date_created"))),
    "date_modified": (("date_modified",), _iso(_column(Location, "date_modified"))),
    "distance": ((), _distance),
    "country_code": (("cpo",), _plain(_CPO)),
    "publish": (("moderation", "publish"), _publish),
    "images": (("images",), _images_of(_column(Location, "images"))),
}

def _iso_sql(column: str) -> str:
    """A timestamp column as graphene's DateTime writes Django's value (`isoformat()` of an aware UTC
    datetime): seconds, then `.` and six digits unless the microseconds are 0, then `+00:00` (PostgreSQL's
    own JSON of a timestamp drops trailing zeros of the fraction: `.12` where Python writes `.120000`)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN mod(extract(microseconds FROM {utc})::bigint, "
            f"1000000) = 0 THEN '' ELSE to_char({utc}, '.US') END || '+00:00')")


# EVSE and connector fields as SQL over the EVSE `e` and the connector `n` (JSON carries text, integers and
# floats as these fields' resolvers give them).
EVSE_SQL = {
    **{name: f'e."{_column(Evse, name)}"' for name in ("uid", "evse_id", "serial_number", "meter_type", "status",
                                                      "current_ws_connection_id", "server_id")},
    "cpo_location_id": f'e."{_column(Evse, "location")}"',
    "date_created": _iso_sql(f'e."{_column(Evse, "date_created")}"'),
}
CONNECTOR_SQL = {
    **{name: f'n."{_column(Connector, name)}"' for name in ("connector_id", "standard", "format", "power_type",
                                                           "max_voltage", "max_amperage", "max_electric_power")},
    "id": 'n."id"',
    "evse_uid": f'e."{_column(Evse, "uid")}"',
    "status": f"NULLIF(n.\"{_column(Connector, 'status')}\", '')",  # resolve_status: `status or None`
    "connector_type": (f'(SELECT t."{_column(ConnectorType, "code")}" FROM "{ConnectorType._meta.db_table}" t '
                       f'WHERE t."id" = n."{_column(Connector, "connector_type")}")'),
    "rate_setting": f'n."{_column(Connector, "rate_setting")}"::float8',
    "date_created": _iso_sql(f'n."{_column(Connector, "date_created")}"'),
    "date_modified": _iso_sql(f'n."{_column(Connector, "date_modified")}"'),
}
# The layout of models.PublicEvses.evses (migration 0008 writes it; its values are those of EVSE_SQL and
# CONNECTOR_SQL): per public EVSE an array of these fields, the last its connectors, each an array of
# CONNECTOR_DOC's. A connector's `evse_uid` is its EVSE's `uid`.
EVSE_DOC = ("uid", "evse_id", "serial_number", "meter_type", "status", "current_ws_connection_id", "server_id",
            "cpo_location_id", "date_created", "connectors")
CONNECTOR_DOC = ("id", "connector_id", "standard", "format", "power_type", "max_voltage", "max_amperage",
                 "max_electric_power", "status", "rate_setting", "date_created", "date_modified")
PUBLIC_EVSES = "_public_evses"  # the page's column of it
# Lookups (facilities, capabilities ...: graphene's Lookup interface) as SQL over the lookup `l`.
LOOKUP_SQL = {"id": 'l."id"', "code": 'l."code"', "description": 'l."description"'}
LOCATION_LOOKUPS = ("facilities", "parking_restrictions", "parking_types")
EVSE_LOOKUPS = ("capabilities", "payment_types")


class _Fallback(Exception):
    """This request is graphene's to answer."""


@dataclass(frozen=True)
class Plan:
    schema: object  # the GraphQLSchema the plan was made for (config.schema's: this app imports no config)
    variable_definitions: tuple  # the operation's, coerced per request
    response_name: str
    field_node: object
    location_fields: frozenset[str]
    with_cpo: bool
    json_columns: tuple[tuple[str, str], ...]  # (alias, SQL over the page's row): EVSEs, lookups, photos
    # (response name, getter, non-null in the schema)
    members: tuple[tuple[str, Callable, bool], ...]


def _has_directives(document: DocumentNode) -> bool:
    found = []

    class Finder(Visitor):
        def enter_directive(self, *_args):
            found.append(True)
            return self.BREAK

    visit(document, Finder())
    return bool(found)


@functools.lru_cache(maxsize=256)
def plan_of(graphql_schema, document: DocumentNode, operation_name: str | None) -> Plan | None:
    """How to answer this (validated) document directly, or None. Cached per parsed document (the view
    parses each query text once)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation != OperationType.QUERY or _has_directives(document):
        return None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    query_type = graphql_schema.query_type
    roots = collect_fields(graphql_schema, fragments, {}, query_type, operation.selection_set)
    if len(roots) != 1:
        return None
    (response_name, nodes), = roots.items()
    if nodes[0].name.value != ROOT_FIELD:
        return None
    location_type = get_named_type(query_type.fields[ROOT_FIELD].type)
    members, model_fields, json_columns = [], set(), []
    with_cpo = False
    for name, sub in collect_sub_fields(graphql_schema, fragments, {}, location_type, nodes).items():
        field = sub[0].name.value
        if field == "__typename":
            members.append((name, _constant(location_type.name), True))
            continue
        if field == "evses":
            project = _evses_projection(graphql_schema, fragments, location_type, sub)
            if project is not None:  # read from the location's PublicEvses row
                if (PUBLIC_EVSES, selectors.public_evses_doc_sql()) not in json_columns:
                    json_columns.append((PUBLIC_EVSES, selectors.public_evses_doc_sql()))
                members.append((name, _inline("_project({0})", PUBLIC_EVSES, _project=project), True))
                continue
        if field == "evses" or field in LOCATION_LOOKUPS:
            if field == "evses":
                sql = _evses_json(graphql_schema, fragments, location_type, sub)
            else:
                sql = _lookups_json(graphql_schema, fragments, location_type.fields[field], sub, Location, field,
                                    "page", text=True)
            if sql is None:
                return None
            alias = f"_j_{name}"
            json_columns.append((alias, sql))
            members.append((name, _fragment(alias), True))
            continue
        known = LOCATION_FIELDS.get(field)
        if known is None:
            return None
        reads, getter = known
        model_fields.update(reads)
        with_cpo = with_cpo or field == "country_code"
        if field == "images" and (PHOTOS, selectors.photos_json_sql()) not in json_columns:
            json_columns.append((PHOTOS, selectors.photos_json_sql()))
        members.append((name, getter, is_non_null_type(location_type.fields[field].type)))
    if not members:
        return None
    return Plan(schema=graphql_schema, variable_definitions=tuple(operation.variable_definitions or ()),
                response_name=response_name, field_node=nodes[0], location_fields=frozenset(model_fields),
                with_cpo=with_cpo, json_columns=tuple(json_columns), members=tuple(members))


def _constant(value):
    return _inline("_value", _value=value)


def _fragment(alias: str):
    """A JSON column made by PostgreSQL, written into the answer as it is."""
    return _inline("_Fragment({0})", alias, _Fragment=orjson.Fragment)


def _members(graphql_schema, fragments, object_type, nodes, sql_of,
             literal=lambda text: f"'{text}'") -> list[tuple[str, str]] | None:
    """(response name, SQL) of each field selected on `object_type`: `__typename` as a `literal` (SQL's by
    default), any other as `sql_of(field name, its nodes)` gives it; None when a field has no SQL (the query
    is not compiled)."""
    members = []
    for name, sub in collect_sub_fields(graphql_schema, fragments, {}, object_type, nodes).items():
        field = sub[0].name.value
        sql = literal(object_type.name) if field == "__typename" else sql_of(field, sub)
        if sql is None:
            return None
        members.append((name, sql))
    return members or None


def _lookups_json(graphql_schema, fragments, field_def, nodes, model, relation: str, owner: str, *,
                  text: bool) -> str | None:
    members = _members(graphql_schema, fragments, get_named_type(field_def.type), nodes,
                       lambda field, _sub: LOOKUP_SQL.get(field))
    return members and selectors.lookups_json_sql(model, relation, members, owner, text=text)


def _evses_json(graphql_schema, fragments, location_type, nodes) -> str | None:
    evse_type = get_named_type(location_type.fields["evses"].type)
    connector_type = get_named_type(evse_type.fields["connectors"].type)

    def evse_sql(field, sub):
        if field == "connectors":
            members = _members(graphql_schema, fragments, connector_type, sub,
                               lambda connector_field, _sub: CONNECTOR_SQL.get(connector_field))
            return members and selectors.connectors_json_sql(members)
        if field in EVSE_LOOKUPS:
            return _lookups_json(graphql_schema, fragments, evse_type.fields[field], sub, Evse, field, "e", text=False)
        return EVSE_SQL.get(field)

    members = _members(graphql_schema, fragments, evse_type, nodes, evse_sql)
    return members and selectors.public_evses_json_sql(members)


def _evses_projection(graphql_schema, fragments, location_type, nodes) -> Callable | None:
    """The function that makes the selected EVSEs (with their connectors) of a location from its PublicEvses
    text (None: no public EVSE), or None when the selection reads more than that row holds (lookups, a
    connector's `connector_type`): then `_evses_json`'s subqueries. Written for the selection (`exec`), as
    `_builder` writes the page's loop. Parsing and picking a page's 40 EVSEs and 80 connectors, and encoding
    them, takes ~0.06 ms of Python (a loop of 10,000 pages), where their subqueries took ~0.4 ms of
    PostgreSQL's CPU (models.PublicEvses)."""
    evse_type = get_named_type(location_type.fields["evses"].type)
    connector_type = get_named_type(evse_type.fields["connectors"].type)
    uid = f"e[{EVSE_DOC.index('uid')}]"

    def values(object_type, sub_nodes, value_of) -> str | None:
        """The selected fields as a Python dict display (each value an expression over the row's arrays)."""
        members = _members(graphql_schema, fragments, object_type, sub_nodes, value_of, literal=repr)
        return members and "{" + ", ".join(f"{name!r}: {value}" for name, value in members) + "}"

    def connector_value(field, _sub):
        if field == "evse_uid":
            return uid
        return f"c[{CONNECTOR_DOC.index(field)}]" if field in CONNECTOR_DOC else None

    def evse_value(field, sub):
        if field == "connectors":
            connector = values(connector_type, sub, connector_value)
            return connector and f"[{connector} for c in e[{EVSE_DOC.index('connectors')}]]"
        return f"e[{EVSE_DOC.index(field)}]" if field in EVSE_DOC else None

    evse = values(evse_type, nodes, evse_value)
    if evse is None:
        return None
    namespace = {"_loads": orjson.loads}
    exec(f"def project(text):\n    return [] if text is None else [{evse} for e in _loads(text)]",  # noqa: S102
         namespace)  # the text is ours: response names (GraphQL names), indexes, type names
    return namespace["project"]


def answer(plan: Plan, request, variables: dict | None) -> bytes | None:
    """The response body (JSON) of this request (the plan's query with these variables), or None: graphene's
    path answers it."""
    try:
        return _answer(plan, request, variables)
    except (_Fallback, GraphQLError, selectors.SearchError):
        return None
    except Exception:  # a bug or the database: graphene's path runs it again and reports it as it does
        logger.exception("compiled %s failed; answering through graphene", ROOT_FIELD)
        return None


def _answer(plan: Plan, request, variables) -> bytes | None:
    if getattr(request, "graphql_client", None) is None:
        raise _Fallback  # UNAUTHENTICATED, as the resolver says it
    graphql_schema = plan.schema
    coerced = get_variable_values(graphql_schema, plan.variable_definitions, variables or {})
    if isinstance(coerced, list):
        raise _Fallback
    field_def = graphql_schema.query_type.fields[ROOT_FIELD]
    args = get_argument_values(field_def, plan.field_node, coerced)
    page = types._page(args.get("limit"), args.get("offset"))  # noqa: SLF001 - the resolver's own checks
    found = selectors.locations_search_page_rows(
        location_fields=plan.location_fields, with_cpo=plan.with_cpo, json_columns=plan.json_columns,
        offset=page.start, limit=page.stop - page.start, **types._search_filters(args))  # noqa: SLF001
    if found is None:
        raise _Fallback
    names, rows = found
    items = _builder(plan.members, tuple(names))(rows)
    return orjson.dumps({"data": {plan.response_name: items}})


@functools.lru_cache(maxsize=256)
def _builder(members: tuple[tuple[str, Callable, bool], ...], names: tuple[str, ...]) -> Callable[[list], list]:
    """The page's loop for these members over rows of these columns: a function written for them (each
    value an expression over the row's tuple, `_inline`), which gives a dict per row, its keys in the
    members' order, or raises _Fallback for a null in a non-null field. As the getters one by one over a
    dict of each row would, in a quarter of the time (20 rows, 10 fields: 55 µs with the encoding before,
    ~20 after)."""
    at = {name: index for index, name in enumerate(names)}
    namespace = {"_Fallback": _Fallback}
    lines, values, non_null, row_dict = [], [], [], False
    for k, (name, getter, required) in enumerate(members):
        inline = getattr(getter, "inline", None)
        if inline is None:  # called with the row as a dict
            namespace[f"_g{k}"], row_dict = getter, True
            expression = f"_g{k}(row)"
        else:
            template, columns, names_used = inline
            for used, value in names_used.items():  # each member's own (constants differ)
                namespace[f"{used}_{k}"] = value
                template = re.sub(rf"\b{used}\b", f"{used}_{k}", template)
            expression = template.format(*(f"v[{at[column]}]" for column in columns))
        lines.append(f"        m{k} = {expression}")
        values.append(f"{name!r}: m{k}")
        if required:
            non_null.append(f"m{k} is None")
    body = ["def build(rows):", "    items = []", "    for v in rows:"]
    if row_dict:
        namespace["_names"] = names
        body.append("        row = dict(zip(_names, v))")
    body += lines
    if non_null:
        body += [f"        if {' or '.join(non_null)}:", "            raise _Fallback"]
    body += [f"        items.append({{{', '.join(values)}}})", "    return items"]
    exec("\n".join(body), namespace)  # noqa: S102 - the text is ours: names from the schema, indexes, templates
    return namespace["build"]
