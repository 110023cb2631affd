from celery import shared_task

from tenancy.services import quotas


@shared_task(time_limit=120)
def refund_stale_reservations() -> int:
    return quotas.refund_stale_reservations()
