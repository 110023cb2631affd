"""Enqueue synthesis tasks by their registered name.

`synthesis/tasks.py` imports the pipeline to run it; the services enqueue those tasks by name
instead of importing them, so services never import tasks and the two form no cycle. The names
are the message contract (a test checks them against the registered tasks). A name-based
signature still goes through the registered task's `apply_async`, so eager mode keeps working.
"""

from __future__ import annotations

from celery import current_app

SYNTHESIZE_TASK = "synthesis.tasks.synthesize"
DELIVER_WEBHOOK_TASK = "synthesis.tasks.deliver_webhook"


def enqueue(name: str, *args, queue: str | None = None) -> None:
    """Send task `name` with `args`; `queue` overrides the routing (default: the `cpu` queue)."""
    options = {"queue": queue, "routing_key": queue} if queue else {}
    current_app.signature(name, args=list(args)).apply_async(**options)
