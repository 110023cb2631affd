"""`celery` with timing spans in every pool process (bench/spans.py): the same arguments as the
`celery` command, e.g. `python bench/spans_celery.py -A config worker -Q gpu,cpu -c 1`."""

import sys
from pathlib import Path

from celery.signals import worker_process_init

sys.path.insert(0, str(Path(__file__).resolve().parent))


@worker_process_init.connect(weak=False)
def _install(**kwargs):
    import spans

    spans.install("worker")


if __name__ == "__main__":
    from celery.__main__ import main

    sys.argv = ["celery", *sys.argv[1:]]
    sys.exit(main())
