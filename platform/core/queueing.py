"""Enqueue Celery tasks by their registered name.

Services enqueue tasks by name instead of importing them, so services never import tasks and
the two form no cycle. The names are the message contract (tests check them against the
registered tasks). A name-based signature still goes through the registered task's
`apply_async`, so eager mode keeps working.
"""

from __future__ import annotations

from celery import current_app


def enqueue(name: str, *args, queue: str | None = None) -> None:
    """Send task `name` with `args`; `queue` overrides the routing (default: the `cpu` queue,
    or the task's route in `config.celery`)."""
    options = {"queue": queue, "routing_key": queue} if queue else {}
    current_app.signature(name, args=list(args)).apply_async(**options)
