"""Celery tasks of the sync engine: thin, idempotent, acknowledged late (vehicles.sync does the work)."""

from celery import shared_task

from vehicles import sync


@shared_task(name="vehicles.dispatch_due", ignore_result=True, acks_late=True)
def dispatch_due() -> int:
    """Beat: enqueue the cars that are due (claimed, so two dispatchers never enqueue one car twice)."""
    sync.actions_expire()
    return sync.dispatch_due()


@shared_task(name="vehicles.sync_vehicles", ignore_result=True, acks_late=True)
def sync_vehicles(vehicle_ids: list[int], claim: str) -> dict:
    report = sync.vehicles_sync(vehicle_ids=vehicle_ids, claim=claim)
    return {"polled": report.polled, "ok": report.ok, "samples": report.samples, "errors": report.errors}


@shared_task(name="vehicles.action_run", ignore_result=True, acks_late=True)
def action_run(action_id: str) -> str | None:
    action = sync.action_run(action_id=action_id)
    return action.status if action else None
