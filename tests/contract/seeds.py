"""The seed 003's requests and responses as our own fixtures (`seed_003/`, and the GraphQL queries in
`config/seed_queries/`, which the web's warm-up parses too), and how to compare shapes.

The fixtures are the seed's examples as printed: the GraphQL queries verbatim, the JSON bodies without the
`// required` comments and with the addresses the page hid (`[email protected]`) replaced by a valid one.
`test_fixtures_are_the_seed` proves them equal to the seed wherever `../shared/seeds` is present.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from graphql import FieldNode, parse

FIXTURES = Path(__file__).resolve().parent / "seed_003"
QUERY_FIXTURES = Path(__file__).resolve().parents[2] / "config" / "seed_queries"
SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seeds" / "003_8d5f3cf83aed3c89.txt"
QUERIES = ("Evse", "Locations", "Find_ev_locations", "Find_ev_filter_locations", "Location")
# In the order the seed prints them.
REQUESTS = ("register", "login", "logo_patch", "webhook_locations", "webhook_evse")
RESPONSES = ("register", "logo_upload", "login", "photos_upload", "photo_patch", "refresh", "logout",
             "change_old_password", "csv_upload", "filters", "cities", "details", "logo_patch", "pending",
             "webhook_locations", "webhook_evse")
HIDDEN_EMAIL = "[email\u00a0protected]"
STAND_IN_EMAIL = "ceo@solarius.example"


def query(name: str) -> str:
    return (QUERY_FIXTURES / f"{name}.graphql").read_text(encoding="utf-8")


def request_body(name: str) -> dict:
    return json.loads((FIXTURES / "requests" / f"{name}.json").read_text(encoding="utf-8"))


def response_example(name: str) -> dict:
    return json.loads((FIXTURES / "responses" / f"{name}.json").read_text(encoding="utf-8"))


# --- Reading the seed itself ------------------------------------------------------------------------------

def _balanced(text: str, start: int) -> str:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start:index + 1]
    raise ValueError(f"unbalanced braces from offset {start}")


def seed_examples(text: str) -> tuple[dict[str, str], list[dict], list[dict]]:
    """The seed's GraphQL queries by operation name, its request bodies and its responses, in order."""
    queries = {match.group(1): _balanced(text, match.start())
               for match in re.finditer(r"^query (\w+) \{", text, re.M)}
    requests, responses = [], []
    for match in re.finditer(r"^(Request Body|Requst Body|Response)\s*\n\s*\n?\{", text, re.M):
        block = _balanced(text, text.index("{", match.start()))
        block = re.sub(r"//[^\n]*", "", block).replace(HIDDEN_EMAIL, STAND_IN_EMAIL)
        (responses if match.group(1) == "Response" else requests).append(json.loads(block))
    return queries, requests, responses


# --- Shapes -----------------------------------------------------------------------------------------------

def _kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "object", type(None): "null"}[type(value)]


def shape_problems(example, actual, path: str = "") -> list[str]:
    """Where `actual` does not have the example's shape: every key the example has, with a value of the same
    JSON kind, recursively (list items against the example's first item). Keys beyond the example's are
    allowed: evhub adds beside the contract, it never takes away."""
    if _kind(example) != _kind(actual):
        return [f"{path or 'body'}: a {_kind(actual)} where the seed has a {_kind(example)}"]
    problems: list[str] = []
    if isinstance(example, dict):
        for key, value in example.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += shape_problems(value, actual[key], f"{path}.{key}")
    elif isinstance(example, list) and example:
        for index, item in enumerate(actual):
            problems += shape_problems(example[0], item, f"{path}[{index}]")
    return problems


def selection_problems(query_text: str, data: dict) -> list[str]:
    """Where a GraphQL answer does not hold exactly the fields the query selects, at every level."""
    operation = parse(query_text).definitions[0]
    problems: list[str] = []

    def check(selection_set, value, path: str) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                check(selection_set, item, f"{path}[{index}]")
            return
        if value is None:
            return
        fields = [node for node in selection_set.selections if isinstance(node, FieldNode)]
        names = {(node.alias or node.name).value for node in fields}
        if not isinstance(value, dict) or set(value) != names:
            problems.append(f"{path}: {sorted(value) if isinstance(value, dict) else value!r} is not {sorted(names)}")
            return
        for node in fields:
            child = value[(node.alias or node.name).value]
            if node.selection_set is None and isinstance(child, (dict, list)) and \
                    any(isinstance(item, (dict, list)) for item in (child if isinstance(child, list) else [child])):
                problems.append(f"{path}.{node.name.value}: a leaf answered with objects")
            elif node.selection_set is not None:
                check(node.selection_set, child, f"{path}.{node.name.value}")

    check(operation.selection_set, data, "data")
    return problems
