"""OCPI paging (transport_and_format: pagination), for every module's sender list; ocpi.transport re-exports it.

A sender's list is ordered by (a time, the primary key). A page reached by OFFSET skips every entry before
it, and a count() reads every entry: a crawl of a large list grows quadratically. So the `Link` we give
carries a keyset cursor: signed, URL-safe, holding the last row's key, the position and the total counted
on the first page, bound to the caller's scope and the filters. A page that follows it starts right after
that row through the order's index, and counts nothing. An `offset` a client builds itself still works:
when it continues a page we served (offset = that page's offset + its rows), an anchor cached for a few
minutes makes it a keyset page too; any other offset skips that many index entries and counts (linear).

Changes between pages behave as OCPI's order (last_updated) implies: an object updated meanwhile moves to
the end and comes again there, with its new content; a new one comes at the end; none is skipped (an
OFFSET would skip one for every earlier object that moved). X-Total-Count is the first page's count.
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import connections
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils.dateparse import parse_datetime

from ocpi.status import INVALID_PARAMETERS, OcpiError

logger = logging.getLogger(__name__)

CURSOR_SALT = "ocpi.page.cursor"
CURSOR_MAX_LENGTH = 400  # ours are about 150 characters; longer is not ours
ANCHOR_SECONDS = 300


@dataclass
class Page:
    offset: int
    limit: int
    date_from: datetime | None
    date_to: datetime | None
    after: tuple[datetime, int] | None = None  # the (time, pk) key the page starts after: cursor or anchor
    total: int | None = None  # counted by the first page, carried since
    query: str = ""  # digest of the caller's scope, the path and the filters: what a cursor belongs to


def page_params(request, *, scope: str = "") -> Page:
    """offset, limit (OCPI_PAGE_SIZE when not given, capped at OCPI_PAGE_LIMIT), date_from (inclusive),
    date_to (exclusive), and the `cursor` of a Link we gave (2001 when it is not ours or not this query's).
    `scope` names what the caller may see (its total and anchors are its own)."""
    cap = settings.OCPI_PAGE_LIMIT
    offset = _int_param(request, "offset", 0)
    limit = min(_int_param(request, "limit", min(settings.OCPI_PAGE_SIZE, cap)), cap)
    if limit == 0:
        raise OcpiError("'limit' must be at least 1", status_code=INVALID_PARAMETERS)
    page = Page(offset=offset, limit=limit, date_from=_datetime_param(request, "date_from"),
                date_to=_datetime_param(request, "date_to"))
    page.query = _query_digest(request, page, scope)
    raw = request.GET.get("cursor")
    if raw:
        _cursor_read(raw, page)
    elif offset:
        anchor = _cache_get(_anchor_key(page.query, offset))
        if anchor is not None:
            page.after, page.total = (datetime.fromisoformat(anchor[0]), anchor[1]), anchor[2]
    return page


def page_keys(queryset, page: Page, *, time_field: str = "last_updated") -> tuple[list[tuple[datetime, int]], bool]:
    """The page's rows as (time, pk) keys in the list's order (`queryset` is ordered by time_field, pk),
    and whether another page follows: one query on the index of that order."""
    rows = queryset.select_related(None).prefetch_related(None).values_list(time_field, "pk")
    if page.after is not None:
        rows = rows.filter(_after(queryset, time_field, page.after))[:page.limit + 1]
    else:
        rows = rows[page.offset:page.offset + page.limit + 1]
    keys = list(rows)
    return keys[:page.limit], len(keys) > page.limit


def _after(queryset, time_field: str, key: tuple[datetime, int]) -> RawSQL:
    """`(time, pk) > key` as a row comparison: the index of the order seeks to the key. (Written with an
    OR, `time > t OR (time = t AND pk > id)`, the scan reads every row of the key's moment before it, and
    a catalogue loaded in one go has hundreds of thousands in one second.) PostgreSQL and SQLite >= 3.15."""
    connection = connections[queryset.db]
    quote, meta = connection.ops.quote_name, queryset.model._meta
    table = quote(meta.db_table)
    sql = f"({table}.{quote(meta.get_field(time_field).column)}, {table}.{quote(meta.pk.column)}) > (%s, %s)"
    moment, pk = key
    return RawSQL(sql, (connection.ops.adapt_datetimefield_value(moment), pk), output_field=BooleanField())


def page_total(queryset, page: Page) -> int:
    """X-Total-Count: carried by the cursor (or anchor), else counted."""
    return page.total if page.total is not None else queryset.count()


def page_headers(request, page: Page, total: int, returned: int, *, last_key: tuple[datetime, int] | None = None,
                 more: bool | None = None) -> dict:
    """X-Total-Count, X-Limit, and a Link to the next page (with the same filters) only when there is one.

    With `last_key` (and `more`, from page_keys) the Link carries the keyset cursor of the next page, and
    its offset for clients that build their own; without, the offset only."""
    headers = {"X-Total-Count": str(total), "X-Limit": str(page.limit)}
    if more is None:
        more = page.offset + returned < total
    if more and returned:
        query = {key: value for key, value in request.GET.items() if key not in ("offset", "limit", "cursor")}
        next_offset = page.offset + returned
        query.update(offset=next_offset, limit=page.limit)
        if last_key is not None:
            moment, pk = last_key
            query["cursor"] = signing.dumps([moment.isoformat(), pk, total, next_offset, page.query],
                                            salt=CURSOR_SALT)
            _cache_set(_anchor_key(page.query, next_offset), [moment.isoformat(), pk, total])
        # ocpi.transport.public_url, which imports this module: peers get our public address, whatever host
        # the request named.
        url = settings.PUBLIC_BASE_URL.rstrip("/") + request.path + "?" + urlencode(query)
        headers["Link"] = f'<{url}>; rel="next"'
    return headers


def _query_digest(request, page: Page, scope: str) -> str:
    filters = "|".join([scope, request.path.rstrip("/"), *(moment.isoformat() if moment else ""
                                                           for moment in (page.date_from, page.date_to))])
    return hashlib.sha256(filters.encode()).hexdigest()[:16]


def _cursor_read(raw: str, page: Page) -> None:
    try:
        if len(raw) > CURSOR_MAX_LENGTH:
            raise signing.BadSignature("too long")
        moment, pk, total, offset, query = signing.loads(raw, salt=CURSOR_SALT)
        after = (datetime.fromisoformat(moment), int(pk))
    except (signing.BadSignature, ValueError, TypeError):
        raise OcpiError("'cursor' is not one of ours: follow the Link as given, or page with offset",
                        status_code=INVALID_PARAMETERS) from None
    if query != page.query:
        raise OcpiError("'cursor' belongs to another list or other filters: follow the Link as given",
                        status_code=INVALID_PARAMETERS)
    page.after, page.total, page.offset = after, int(total), int(offset)


def _anchor_key(query: str, offset: int) -> str:
    return f"ocpi:page-anchor:{query}:{offset}"


# The anchors only save work: a cache that is down costs an OFFSET, never the answer.
def _cache_get(key: str):
    try:
        return cache.get(key)
    except Exception:  # noqa: BLE001
        logger.warning("OCPI page anchor not read from the cache", exc_info=True)
        return None


def _cache_set(key: str, value) -> None:
    try:
        cache.set(key, value, ANCHOR_SECONDS)
    except Exception:  # noqa: BLE001
        logger.warning("OCPI page anchor not written to the cache", exc_info=True)


def _int_param(request, name: str, default: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise OcpiError(f"'{name}' must be a non-negative whole number, not {raw[:40]!r}",
                        status_code=INVALID_PARAMETERS)
    return int(raw)


def _datetime_param(request, name: str) -> datetime | None:
    raw = request.GET.get(name)
    if not raw:
        return None
    try:
        moment = parse_datetime(raw.replace(" ", "+"))  # a '+' offset arrives as a space when not escaped
    except ValueError:
        moment = None
    if moment is None:
        raise OcpiError(f"'{name}' must be an RFC 3339 date-time such as 2024-01-31T12:00:00Z, not {raw[:40]!r}",
                        status_code=INVALID_PARAMETERS)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
