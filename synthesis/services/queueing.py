"""The names of the synthesis tasks, which the services enqueue by name (`core.queueing`).

`synthesis/tasks.py` imports the pipeline to run it; services never import tasks, so the two
form no cycle. A test checks these names against the registered tasks."""

from core.queueing import enqueue

SYNTHESIZE_TASK = "synthesis.tasks.synthesize"
DELIVER_WEBHOOK_TASK = "synthesis.tasks.deliver_webhook"

__all__ = ["DELIVER_WEBHOOK_TASK", "SYNTHESIZE_TASK", "enqueue"]
