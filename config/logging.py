import logging

from django_guid.context import guid


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record: the request's (or the task's) id, `-` outside of both."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = guid.get() or "-"
        return True
