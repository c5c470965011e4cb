from celery import shared_task
from celery.signals import worker_ready
from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_CACHE_KEY = "evhub:heartbeat"


@shared_task(name="config.tasks.heartbeat", ignore_result=True)
def heartbeat() -> str:
    """Beat runs this every minute; /health/ reads when it last ran, so a stopped worker or beat shows."""
    now = timezone.now().isoformat()
    cache.set(HEARTBEAT_CACHE_KEY, now, timeout=None)
    return now


@worker_ready.connect
def heartbeat_on_start(sender, **kwargs) -> None:
    # A freshly started hub shows healthy at once instead of after beat's first minute.
    sender.app.send_task("config.tasks.heartbeat")
