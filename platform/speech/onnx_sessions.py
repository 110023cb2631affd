"""ONNX Runtime sessions the way the speech library runs them: CPU, a bounded thread count
(workers scale with processes, not threads)."""

from __future__ import annotations

from pathlib import Path


def cpu_session(path: Path | str, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
