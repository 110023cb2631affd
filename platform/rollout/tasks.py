"""Celery tasks of the rollout app. Services enqueue them by name."""

from celery import shared_task


# Guardrails ----------------------------------------------------------------------------------
@shared_task(time_limit=300)
def evaluate_rollouts() -> dict:
    """Beat, every ROLLOUT_EVALUATE_INTERVAL_S: judge each running rollout and act on it."""
    from rollout.services import guardrails

    return guardrails.evaluate_all()


@shared_task(acks_late=True, time_limit=300)
def score_quality_sample(sample_id: str) -> str:
    """Render a sampled request's text with both versions and score both (SYNTHESIS_QUEUE)."""
    from rollout.services import quality

    return str(quality.score(sample_id))
