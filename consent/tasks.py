"""Celery tasks of consent: verification (`cpu`) and the housekeeping of expiry and artefact
retention (beat). Services enqueue them by name (`core.queueing`)."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from consent import services


@shared_task(
    acks_late=True,
    soft_time_limit=settings.CONSENT_VERIFY_TIME_LIMIT_S,
    time_limit=settings.CONSENT_VERIFY_TIME_LIMIT_S + 15,
)
def verify_consent(consent_id: str) -> None:
    try:
        services.verify(consent_id)
    except SoftTimeLimitExceeded:
        services.fail_verification(
            consent_id, "Verification took too long. Record a shorter statement and try again."
        )
    except Exception:
        services.fail_verification(
            consent_id, "The recording could not be verified. Request a new statement and "
            "record it again.",
        )  # fmt: skip
        raise


@shared_task(time_limit=300)
def consent_housekeeping() -> dict:
    return {"expired": services.expire_due(), "purged": services.purge_artefacts_due()}
