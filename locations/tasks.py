"""Celery tasks of the catalogue: thin, each loads by id and calls a service."""

from celery import shared_task
from django.conf import settings

from locations.csv_import import jobs

# A job's own limit (a worker's time limit stops it, and the import rolls back and says so); a hard
# limit a minute later ends a worker that does not stop. The broker's redelivery of a job whose worker
# died is why it acknowledges late; the service runs a job at most once at a time and never again once
# finished.
_SOFT_SECONDS = getattr(settings, "EVHUB_CSV_JOB_SECONDS", 1800)


@shared_task(name="locations.csv_import_run", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=_SOFT_SECONDS, time_limit=_SOFT_SECONDS + 60)
def csv_import_run(csv_import_id: int) -> None:
    jobs.csv_import_run(csv_import_id=csv_import_id)
