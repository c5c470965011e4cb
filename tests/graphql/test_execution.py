"""The execution shortcut (config.graphql.EvhubExecutionContext) answers exactly as graphql-core's general path.

A small schema with every kind of field the shortcut serves (default-resolved leaves, leaves with their
own resolver, lists of non-null objects) and every way they can go wrong: the same document executed
by both contexts must give the same data and the same errors (messages, paths, locations), in order.
"""

from __future__ import annotations

import graphene
import pytest
from graphql import ExecutionContext, execute, parse

from config.graphql import EvhubExecutionContext, _never_awaitable


class Boom(Exception):
    pass


class Item(graphene.ObjectType):
    name = graphene.String(required=True)
    label = graphene.String()
    size = graphene.Int(required=True)
    shout = graphene.String()
    strict = graphene.String(required=True)
    children = graphene.List(graphene.NonNull(lambda: Item))
    required_children = graphene.List(graphene.NonNull(lambda: Item), required=True)

    @staticmethod
    def resolve_shout(item, info):
        if item.get("shout") == "raise":
            raise Boom("shout failed")
        return None if item.get("shout") is None else f"{item['shout']}!{info.field_name}"

    @staticmethod
    def resolve_strict(item, info):
        if item.get("strict") == "raise":
            raise Boom("strict failed")
        return item.get("strict")

    @staticmethod
    def resolve_children(item, info):
        children = item.get("children")
        if children == "raise":
            raise Boom("children failed")
        return children

    @staticmethod
    def resolve_required_children(item, info):
        children = item.get("required_children")
        if children == "raise":
            raise Boom("required children failed")
        return children


def item(name="a", **extra):
    return {"name": name, "size": 1, "strict": "s", **extra}


CASES = {
    "plain": [item(label="x", shout="hi", children=[item("b"), item("c")], required_children=[item("d")])],
    "null in a non-null default leaf": [item(children=[{"size": 1, "strict": "s"}], required_children=[])],
    "a leaf that fails to serialize": [item(children=[item(size="many")], required_children=[])],
    "an Exception as a value": [item(label=ValueError("as a value"), required_children=[])],
    "a custom resolver raising": [item(shout="raise", required_children=[])],
    "a custom resolver raising, non-null": [item(strict="raise", required_children=[item("b")])],
    "a custom resolver giving null, non-null": [item(strict=None, required_children=[])],
    "a list resolver raising": [item(children="raise", required_children=[])],
    "a non-null list resolver raising": [item(required_children="raise"), item("b", required_children=[])],
    "a null item": [item(children=[item("b"), None], required_children=[])],
    "a null non-null list": [item(required_children=None), item("b", required_children=[])],
    "not a list": [item(children=(item("t"),), required_children=iter([item("u")]))],
    "not iterable": [item(children=5, required_children=[])],
    "an error deep inside": [item(required_children=[item("b", required_children=[item("c", strict=None,
                                                                                           required_children=[])])])],
}


class Query(graphene.ObjectType):
    items = graphene.List(graphene.NonNull(Item), case=graphene.String(required=True))

    @staticmethod
    def resolve_items(root, info, case):
        return CASES[case]


schema = graphene.Schema(query=Query, auto_camelcase=False)
FIELDS = "name label size shout strict"
QUERY = parse(f"""query ($case: String!) {{ items(case: $case) {{ {FIELDS} first: name
  children {{ {FIELDS} children {{ name }} }}
  required_children {{ {FIELDS} required_children {{ {FIELDS} required_children {{ name }} }} }} }} }}""")


def run(context_class, case):
    result = execute(schema.graphql_schema, QUERY, variable_values={"case": case},
                     execution_context_class=context_class, is_awaitable=_never_awaitable)
    errors = [(error.message, error.path, error.locations) for error in result.errors or []]
    return result.data, errors


@pytest.mark.smoke
@pytest.mark.parametrize("case", list(CASES))
def test_the_shortcut_answers_as_graphql_core(case):
    if case == "not a list":  # an iterator is consumed by the first run: give each its own
        CASES[case] = [item(children=(item("t"),), required_children=iter([item("u")]))]
        expected = run(ExecutionContext, case)
        CASES[case] = [item(children=(item("t"),), required_children=iter([item("u")]))]
    else:
        expected = run(ExecutionContext, case)
    assert run(EvhubExecutionContext, case) == expected
    if case != "plain":
        assert expected[1], "the case should produce an error"
