"""gunicorn config for benchmarks with timing spans: `gunicorn -c bench/spans_gunicorn.py ...`.

Every worker wraps its code paths once the application is loaded (bench/spans.py); without
TIMBRE_BENCH_SPANS in the environment nothing is wrapped."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def post_worker_init(worker):
    import spans

    spans.install("web")
