"""Settings of the Celery worker and beat that tests/ocpi/test_worker_beat.py starts: the project's own
(config.settings, from the same environment), every interval of beat's schedule cut to
EVHUB_TEST_BEAT_SECONDS, so that a test sees beat's rounds in seconds rather than minutes. Which entries
the schedule has, and the tasks they name, stay the project's (EVHUB_OCPI_PULL_MINUTES=0 leaves the pull
out, as in production); the intervals themselves are asserted in tests/ocpi/test_push.py and
tests/ocpi/test_worker_beat.py."""

import os
from datetime import timedelta

from config.settings import *  # noqa: F401,F403
from config.settings import CELERY_BEAT_SCHEDULE as PROJECT_BEAT_SCHEDULE

CELERY_BEAT_SCHEDULE = {
    name: {**entry, "schedule": timedelta(seconds=float(os.environ["EVHUB_TEST_BEAT_SECONDS"]))}
    for name, entry in PROJECT_BEAT_SCHEDULE.items()
}
