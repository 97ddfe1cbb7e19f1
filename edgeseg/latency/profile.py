"""Measure an ONNX model on this machine with ONNX Runtime: latency percentiles, RSS and per-op times.

Timed runs use a session without profiling (the profiler slows every node); the per-operator
breakdown comes from a second session with ONNX Runtime's own profiler over a few runs.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edgeseg.errors import EdgesegError

DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
          "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}


@dataclass(frozen=True)
class ProfileResult:
    model: str
    input_shape: tuple
    threads: int
    runs: int
    warmup: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    throughput_fps: float
    peak_rss_mb: float
    op_ms: dict  # op type -> mean ms per run, from ORT's profiler (sorted, largest first)

    def to_dict(self) -> dict:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _session(path: str, threads: int, profile_prefix: str | None = None):
    from edgeseg.ort import cpu_session

    return cpu_session(path, threads, profile_prefix)


def _feeds(sess, input_shape):
    import numpy as np

    rng, feeds = np.random.default_rng(0), {}
    for i, inp in enumerate(sess.get_inputs()):
        shape = tuple(input_shape) if (input_shape and i == 0) else tuple(inp.shape)
        if any(not isinstance(d, int) or d <= 0 for d in shape):
            raise EdgesegError(f"input '{inp.name}' has dynamic shape {shape}; pass --input-shape, e.g. 1x3x224x224")
        feeds[inp.name] = rng.standard_normal(shape).astype(DTYPES.get(inp.type, "float32"))
    return feeds


def op_breakdown(trace_path: str, runs: int) -> dict:
    """Sum ORT profiler 'Node' events per op type, in ms per run."""
    events = json.loads(Path(trace_path).read_text())
    per_op: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", "?")
            per_op[op] = per_op.get(op, 0.0) + e.get("dur", 0) / 1000.0 / runs
    return dict(sorted(per_op.items(), key=lambda kv: -kv[1]))


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def profile_model(path, runs: int = 50, warmup: int = 5, threads: int = 1, input_shape=None,
                  op_runs: int = 10) -> ProfileResult:
    """Warm up, time `runs` runs, then profile `op_runs` runs per operator. threads=0: ORT's default."""
    path = str(path)
    if not Path(path).is_file():
        raise EdgesegError(f"model file not found: {path}")
    sess = _session(path, threads)
    feeds = _feeds(sess, input_shape)
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    op_ms = {}
    if op_runs > 0:
        with tempfile.TemporaryDirectory() as tmp:
            psess = _session(path, threads, os.path.join(tmp, "ort"))
            psess.run(None, feeds)  # warm-up, excluded below by counting runs + 1
            for _ in range(op_runs):
                psess.run(None, feeds)
            op_ms = op_breakdown(psess.end_profiling(), op_runs + 1)
    mean = sum(times) / len(times)
    used = threads or os.cpu_count() or 1
    shape = next(iter(feeds.values())).shape
    return ProfileResult(Path(path).stem, tuple(shape), used, len(times), warmup, percentile(times, 50),
                         percentile(times, 90), percentile(times, 99), mean, min(times), 1000.0 / mean, peak_rss_mb(), op_ms)
