"""`POST /graphql` for apps, GraphiQL at `GET /graphql` for a browser (see docs/graphql.md).

The view authenticates the caller once and leaves it on the request, which is the resolvers' context:
`Basic <client key>` (a front end: find_ev_*) or `Bearer <access token>` (a CPO user: evse, locations,
location). A missing, wrong or refused credential is not an HTTP error: the fields that need it answer
null with an UNAUTHENTICATED error (HTTP 200), so one contract-shaped answer serves every query.

Before anything runs, a query passes two validations: our limits (size, depth, aliases, selections,
top-level fields), then the GraphQL specification's own rules (`specified_rules`), which graphene-django
would drop if we handed it `validation_rules` alone. The limits go first because they are cheap and
bound the work of the specification rules (some are quadratic in the number of fields).
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache, partial

from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from graphene_django.settings import graphene_settings
from graphene_django.views import GraphQLView, HttpError
from graphene.types.resolver import dict_or_attr_resolver
from graphql import (ExecutionContext, ExecutionResult, GraphQLError, Undefined, execute, is_leaf_type, is_list_type,
                     is_non_null_type, is_object_type, located_error, parse, validate, validate_schema)
from graphql.pyutils import Path
from graphql.language import DocumentNode, FieldNode, FragmentSpreadNode, InlineFragmentNode, OperationDefinitionNode
from graphql.validation import ValidationRule, specified_rules
from rest_framework import exceptions

from config.schema import schema
from locations import graphql_compiled
from locations.json_input import JsonRejected, json_loads, text_storable
from emsp.portal import ClientKeyAuthentication, CpoCaller, SessionAuthentication

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 20_000
MAX_DEPTH = 8  # levels of fields: find_ev_locations { evses { connectors { id } } } is 4
MAX_ALIASES = 20
MAX_SELECTIONS = 200  # field selections, fragments expanded (the "cost" of a query)
MAX_ROOT_FIELDS = 5  # each top-level field runs its own database queries
MAX_INTROSPECTION_SELECTIONS = 1_000  # GraphiQL's schema query selects a few hundred
MAX_FRAGMENT_SPREADS = 200
MAX_INTROSPECTION_ROOTS = 2  # GraphiQL asks one `__schema`; 200 aliased `__type`s answered 177 KB


class QueryLimits(ValidationRule):
    """Refuse documents too deep, too wide or with too many aliases, before the spec's rules run.

    Introspection (`__schema`, `__type`) is counted apart: its depth is bounded by the specification's
    MaxIntrospectionDepthRule, its width here.
    """

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args):
        self.selections = self.aliases = self.roots = self.spreads = self.introspection = 0
        self.introspection_roots = 0
        try:
            self._walk(node.selection_set, depth=1, expanding=frozenset(), introspection=False)
        except _Refused as refused:
            self.report_error(GraphQLError(str(refused), node, extensions={"code": "QUERY_TOO_COMPLEX"}))

    def _walk(self, selection_set, *, depth: int, expanding: frozenset, introspection: bool) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                inside = introspection or selection.name.value in ("__schema", "__type")
                self._count(selection, depth, inside)
                if selection.selection_set:
                    self._walk(selection.selection_set, depth=depth + 1, expanding=expanding, introspection=inside)
            elif isinstance(selection, InlineFragmentNode):
                self._walk(selection.selection_set, depth=depth, expanding=expanding, introspection=introspection)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                # Unknown fragments and cycles are the specification rules' to report.
                if fragment is not None and name not in expanding:
                    self.spreads += 1
                    if self.spreads > MAX_FRAGMENT_SPREADS:
                        raise _Refused(f"the query expands more than {MAX_FRAGMENT_SPREADS} fragment spreads")
                    self._walk(fragment.selection_set, depth=depth, expanding=expanding | {name},
                               introspection=introspection)

    def _count(self, field: FieldNode, depth: int, introspection: bool) -> None:
        if introspection:
            self.introspection += 1
            self.aliases += field.alias is not None
            if self.introspection > MAX_INTROSPECTION_SELECTIONS:
                raise _Refused(f"introspection may select at most {MAX_INTROSPECTION_SELECTIONS} fields")
            if depth == 1:
                self.introspection_roots += 1
                if self.introspection_roots > MAX_INTROSPECTION_ROOTS:
                    raise _Refused(f"a query may ask for at most {MAX_INTROSPECTION_ROOTS} of __schema and __type")
            if self.aliases > MAX_ALIASES:
                raise _Refused(f"the query uses more than {MAX_ALIASES} aliases")
            return
        self.selections += 1
        self.aliases += field.alias is not None
        if depth == 1 and field.name.value != "__typename":
            self.roots += 1
            if self.roots > MAX_ROOT_FIELDS:
                raise _Refused(f"a query may ask for at most {MAX_ROOT_FIELDS} top-level fields")
        if depth > MAX_DEPTH:
            raise _Refused(f"the query is nested more than {MAX_DEPTH} levels deep")
        if self.selections > MAX_SELECTIONS:
            raise _Refused(f"the query selects more than {MAX_SELECTIONS} fields (fragments counted where "
                           "they are used); ask for fewer")
        if self.aliases > MAX_ALIASES:
            raise _Refused(f"the query uses more than {MAX_ALIASES} aliases")


class _Refused(Exception):
    pass


# --- Execution: a shortcut for plain fields -----------------------------------------------------------
#
# graphql-core resolves every field through the same general path (resolve info, argument values,
# awaitable checks, completion by type): ~15 µs a field, and a page of 20 locations with their EVSEs
# and connectors is ~580 fields. The shortcut serves three kinds of field without arguments directly,
# with exactly what the general path would compute:
#   - leaves that graphene resolves with its default resolver (`getattr(source, name)` or
#     `source.get(name)`), serialized with the scalar's `serialize`;
#   - leaves with a resolver of their own (`distance`, `publish`, `country_code`), called with the same
#     resolve info the general path would build;
#   - lists of non-null objects (`evses`, `connectors`) whose resolver returns a list: each item's
#     fields are executed here in turn (the item type has no `is_type_of`), with the general path's
#     error handling (located at the item, then at the list field).
# A leaf whose value is null, an Exception, fails to serialize or raises goes through the general path
# (its resolver called again: resolvers are pure reads), so results and errors are the general path's
# own; a list resolver that raises likewise; a list result that is not a list, or holds a null or an
# Exception, is completed by the general path's `complete_value` with the value in hand. Resolvers are
# synchronous (Django views), so nothing is awaitable. With middleware, everything takes the general path.

_PLAIN = object()  # marks "no shortcut" in the plan cache
_ATTR, _CALL, _LIST = 0, 1, 2


def _plan(field_def):
    """How the shortcut serves a field, or _PLAIN."""
    if field_def.args:
        return _PLAIN
    field_type, non_null = field_def.type, False
    if is_non_null_type(field_type):
        field_type, non_null = field_type.of_type, True
    resolve = field_def.resolve
    if is_leaf_type(field_type):
        if (isinstance(resolve, partial) and resolve.func is dict_or_attr_resolver and len(resolve.args) == 2
                and not resolve.keywords):
            return (_ATTR, resolve.args[0], resolve.args[1], field_type, non_null)
        if resolve is not None:
            return (_CALL, resolve, field_def, field_type, non_null)
        return _PLAIN
    if resolve is not None and is_list_type(field_type) and is_non_null_type(field_type.of_type):
        item_type = field_type.of_type.of_type
        if is_object_type(item_type) and item_type.is_type_of is None:
            return (_LIST, resolve, field_def, item_type, field_type.of_type)
    return _PLAIN


def _leaf(value, leaf_type, non_null: bool):
    """A scalar field's serialized value, or _PLAIN where the general path must decide (an error, a null
    in a non-null field, a value the type cannot serialize): it then reports it exactly as it would."""
    if value is None:
        return _PLAIN if non_null else None
    if isinstance(value, Exception):
        return _PLAIN
    serialized = leaf_type.serialize(value)
    return _PLAIN if serialized is None or serialized is Undefined else serialized


class EvhubExecutionContext(ExecutionContext):
    _plans: dict = {}

    def execute_fields(self, parent_type, source_value, path, fields):
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return super().execute_fields(parent_type, source_value, path, fields)
        results = {}
        plans = self._plans
        is_dict = isinstance(source_value, dict)
        for response_name, field_nodes in fields.items():
            name = field_nodes[0].name.value
            key = (parent_type, name)
            plan = plans.get(key)
            if plan is None:
                field_def = None if name.startswith("__") else parent_type.fields.get(name)
                plan = plans[key] = _PLAIN if field_def is None else _plan(field_def)
            if plan is not _PLAIN:
                kind = plan[0]
                if kind == _ATTR:
                    _, attname, default, leaf_type, non_null = plan
                    try:
                        value = (source_value.get(attname, default) if is_dict
                                 else getattr(source_value, attname, default))
                        value = _leaf(value, leaf_type, non_null)
                        if value is not _PLAIN:
                            results[response_name] = value
                            continue
                    except Exception:  # noqa: BLE001 - the general path reports it as it would
                        pass
                elif kind == _CALL:
                    _, resolve, field_def, leaf_type, non_null = plan
                    field_path = Path(path, response_name, parent_type.name)
                    try:
                        value = resolve(source_value,
                                        self.build_resolve_info(field_def, field_nodes, parent_type, field_path))
                        value = _leaf(value, leaf_type, non_null)
                        if value is not _PLAIN:
                            results[response_name] = value
                            continue
                    except Exception:  # noqa: BLE001 - the general path reports it as it would
                        pass
                else:
                    done, result = self._list_of_objects(plan, parent_type, source_value, field_nodes,
                                                         Path(path, response_name, parent_type.name))
                    if done:
                        results[response_name] = result
                        continue
            result = self.execute_field(parent_type, source_value, field_nodes,
                                        Path(path, response_name, parent_type.name))
            if result is not Undefined:
                results[response_name] = result
        return results

    def _list_of_objects(self, plan, parent_type, source_value, field_nodes, path) -> tuple[bool, object]:
        """(True, completed value) as `execute_field` would give it, or (False, None): the general path."""
        _, resolve, field_def, item_type, non_null_item = plan
        info = self.build_resolve_info(field_def, field_nodes, parent_type, path)
        try:
            items = resolve(source_value, info)
        except Exception:  # noqa: BLE001 - the general path reports it as it would
            return False, None
        return_type = field_def.type
        try:
            if type(items) is not list or any(item is None or isinstance(item, Exception) for item in items):
                return True, self.complete_value(return_type, field_nodes, info, path, items)
            sub_field_nodes = self.collect_subfields(item_type, field_nodes)
            completed = []
            append = completed.append
            execute_fields = self.execute_fields
            for index, item in enumerate(items):
                item_path = path.add_key(index, None)
                try:
                    append(execute_fields(item_type, item, item_path, sub_field_nodes))
                except Exception as raw_error:
                    error = located_error(raw_error, field_nodes, item_path.as_list())
                    self.handle_field_error(error, non_null_item, item_path)
                    append(None)
            return True, completed
        except Exception as raw_error:
            error = located_error(raw_error, field_nodes, path.as_list())
            self.handle_field_error(error, return_type, path)
            return True, None


def _never_awaitable(_value) -> bool:
    return False


class NoIntrospection(ValidationRule):
    def enter_field(self, node: FieldNode, *_args):
        if node.name.value in ("__schema", "__type"):
            self.report_error(GraphQLError("introspection is disabled on this server", node,
                                           extensions={"code": "INTROSPECTION_DISABLED"}))


def _authenticate(request) -> HttpResponse | None:
    """Set the caller on the request; a 429 to answer instead when its address has guessed too often."""
    request.graphql_cpo = request.graphql_client = request.graphql_auth_error = None
    for authentication in (ClientKeyAuthentication(), SessionAuthentication()):
        try:
            found = authentication.authenticate(request)
        except exceptions.AuthenticationFailed as exc:
            request.graphql_auth_error = str(exc.detail)
            return None
        except exceptions.Throttled as exc:
            wait = int(exc.wait or 1)
            error = {"message": f"too many wrong credentials from this address: try again in {wait} seconds",
                     "extensions": {"code": "TOO_MANY_REQUESTS"}}
            response = JsonResponse({"errors": [error]}, status=429)
            response["Retry-After"] = str(wait)
            return response
        if found is not None:
            caller = found[1]
            if isinstance(caller, CpoCaller):
                request.graphql_cpo = caller.cpo
            else:
                request.graphql_client = caller
            return None
    return None


def _bad_request(message: str) -> HttpError:
    return HttpError(HttpResponseBadRequest(message))


class EvhubGraphQLView(GraphQLView):
    graphiql = True
    schema = schema

    def dispatch(self, request, *args, **kwargs):
        refused = _authenticate(request)
        if refused is not None:
            return refused
        return super().dispatch(request, *args, **kwargs)

    def parse_body(self, request):
        if self.get_content_type(request) == "application/json":
            try:
                body = json_loads(request.body)
            except JsonRejected as exc:  # not UTF-8, lone surrogates, NaN, too deep
                raise _bad_request(f"{exc}: send {{\"query\": ..., \"variables\": {{...}}}}") from None
            if isinstance(body, list):
                raise _bad_request("batched queries are not supported: send one query per request")
            if not isinstance(body, dict):
                raise _bad_request("the body must be a JSON object: {\"query\": ..., \"variables\": {...}}")
            return body
        return super().parse_body(request)

    def execute_graphql_request(self, request, data, query, variables, operation_name, show_graphiql=False):
        if not query:
            if show_graphiql:
                return None
            raise _bad_request("send a query: {\"query\": \"{ find_ev_locations { id } }\"}")
        problem = _request_problem(query, variables, operation_name) or _unstorable(variables)
        if problem:
            return ExecutionResult(errors=[GraphQLError(problem, extensions={"code": "BAD_REQUEST"})])
        graphql_schema = self.schema.graphql_schema
        schema_errors = validate_schema(graphql_schema)
        if schema_errors:
            return ExecutionResult(errors=schema_errors)
        document, errors = _checked_document(query, settings.GRAPHQL_INTROSPECTION)
        if errors:
            return ExecutionResult(errors=errors)
        try:
            return execute(graphql_schema, document, context_value=request, variable_values=variables,
                           operation_name=operation_name, middleware=self.get_middleware(request),
                           execution_context_class=EvhubExecutionContext, is_awaitable=_never_awaitable)
        except Exception:
            logger.exception("GraphQL execution failed")
            return ExecutionResult(errors=[GraphQLError("Internal server error",
                                                        extensions={"code": "INTERNAL_SERVER_ERROR"})])

    @staticmethod
    def format_error(error):
        if isinstance(error, GraphQLError):
            original = error.original_error
            if original is not None and not isinstance(original, GraphQLError):
                # A bug, not the caller's mistake: log it, and tell the caller no internals.
                logger.error("GraphQL resolver failed at %s", error.path, exc_info=original)
                formatted = GraphQLError("Internal server error", error.nodes, path=error.path,
                                         extensions={"code": "INTERNAL_SERVER_ERROR"}).formatted
                return formatted
            return error.formatted
        return {"message": str(error)}


@lru_cache(maxsize=256)
def _checked_document(query: str, introspection: bool) -> tuple[DocumentNode | None, list[GraphQLError]]:
    """Parse and validate once per distinct query text: apps send the same few queries with new variables.

    The document is only read afterwards, so one parsed copy serves every request.
    """
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, [exc]
    limits = [QueryLimits] + ([] if introspection else [NoIntrospection])
    errors = (validate(schema.graphql_schema, document, limits)
              or validate(schema.graphql_schema, document, specified_rules, graphene_settings.MAX_VALIDATION_ERRORS))
    return document, errors


def _request_problem(query, variables, operation_name) -> str | None:
    if not isinstance(query, str):
        return "query must be a string"
    if len(query) > MAX_QUERY_CHARS:
        return f"the query is {len(query)} characters long; at most {MAX_QUERY_CHARS} are accepted"
    if variables is not None and not isinstance(variables, dict):
        return "variables must be a JSON object"
    if operation_name is not None and not isinstance(operation_name, str):
        return "operationName must be a string"
    return None


def _unstorable(variables) -> str | None:
    """Variables of a GET (graphene reads them with `json`) may hold what `json_loads` refuses in a POST."""
    stack = [variables]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
            stack.extend(value.keys())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and not text_storable(value.replace("\x00", "")):
            return "a variable holds a lone UTF-16 surrogate: not text"  # NUL: the resolvers name the argument
        elif isinstance(value, float) and not math.isfinite(value):
            return "a variable holds NaN or Infinity: not a number"
    return None


_full_view = EvhubGraphQLView.as_view()
_api_view: EvhubGraphQLView | None = None


@csrf_exempt
def graphql_view(request, *args, **kwargs):
    """`POST /graphql` of an app (JSON, no query string, not asking for HTML) the short way; anything else
    (GraphiQL, GET, other content types and methods) through the full view.

    The short way answers exactly what the full view would, minus what only a browser needs: no view
    instance per request and no CSRF cookie set (`ensure_csrf_cookie`: GraphiQL's page, a GET, sets it).
    Authentication, the body's checks, the limits and the errors are the full view's own methods.
    """
    if is_api_post(request):
        return _serve_api_post(request)
    return _full_view(request, *args, **kwargs)


def is_api_post(request) -> bool:
    return (request.method == "POST" and not request.GET and "html" not in request.META.get("HTTP_ACCEPT", "")
            and EvhubGraphQLView.get_content_type(request) == "application/json")


def _serve_api_post(request):
    global _api_view
    view = _api_view
    if view is None:  # no per-request state: one instance serves every API request of the process
        view = _api_view = EvhubGraphQLView()
    refused = _authenticate(request)
    if refused is not None:
        return refused
    try:
        data = view.parse_body(request)
        compiled = _compiled_answer(view, request, data)
        if compiled is not None:
            return HttpResponse(content=compiled, content_type="application/json")
        result, status_code = view.get_response(request, data)
    except HttpError as e:  # as GraphQLView.dispatch answers it
        response = e.response
        response["Content-Type"] = "application/json"
        response.content = view.json_encode(request, {"errors": [view.format_error(e)]})
        return response
    return HttpResponse(status=status_code, content=result, content_type="application/json")


def _compiled_answer(view: EvhubGraphQLView, request, data: dict) -> bytes | None:
    """The answer of `locations.graphql_compiled` when the query is one it compiles (an app's search), else
    None: the full view's. Only a request the full view would execute as it stands gets here (its checks
    first); everything it refuses is the full view's to answer."""
    query, variables, operation_name = data.get("query"), data.get("variables"), data.get("operationName")
    if not query or not isinstance(variables, (dict, type(None))) or view.get_middleware(request):
        return None
    if operation_name == "null":  # as graphene reads it
        operation_name = None
    if _request_problem(query, variables, operation_name) or _unstorable(variables):
        return None
    document, errors = _checked_document(query, settings.GRAPHQL_INTROSPECTION)
    if errors:
        return None
    plan = graphql_compiled.plan_of(schema.graphql_schema, document, operation_name)
    if plan is None:
        return None
    return graphql_compiled.answer(plan, request, variables)
