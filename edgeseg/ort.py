"""ONNX Runtime on the CPU, the one way every heavy-side stage builds a session and times models:
export verification, the latency profiler and the benchmarks. (The light runtime's Segmenter, which
chooses TensorRT/CUDA/CPU providers, is edgeseg/runtime/session.py.)"""
from __future__ import annotations

import statistics
import time

from edgeseg.errors import EdgesegError


def cpu_session(model, threads: int = 1, profile_prefix: str | None = None):
    """An InferenceSession on the CPU provider: `threads` intra-op threads, one inter-op thread, quiet logs;
    `model` is a path or serialized bytes; `profile_prefix` turns ORT's profiler on. One-line errors."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    try:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types
        where = "model bytes" if isinstance(model, bytes) else str(model)
        raise EdgesegError(f"{where}: ONNX Runtime cannot load the model ({str(exc).splitlines()[0][:200]})") from None


def interleaved_medians(sessions: dict, feeds: dict, repeats: int, warmup: int = 3) -> tuple[dict, dict]:
    """-> (median wall ms, median thread-CPU ms) per key: the sessions take turns run by run, so machine
    noise reaches all of them alike; `warmup` untimed rounds first."""
    wall = {k: [] for k in sessions}
    cpu = {k: [] for k in sessions}
    for r in range(warmup + repeats):
        for k, s in sessions.items():
            c, t = time.thread_time(), time.perf_counter()
            s.run(None, feeds[k])
            if r >= warmup:
                wall[k].append((time.perf_counter() - t) * 1e3)
                cpu[k].append((time.thread_time() - c) * 1e3)
    return ({k: statistics.median(v) for k, v in wall.items()}, {k: statistics.median(v) for k, v in cpu.items()})
