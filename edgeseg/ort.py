"""ONNX Runtime, the one way every stage builds a session and times models: the light runtime's Segmenter
(its TensorRT/CUDA/CPU provider list, edgeseg/runtime/session.py), the contract reader, export
verification, the latency profiler and the benchmarks. onnxruntime is imported on use only."""
from __future__ import annotations

import statistics
import time

from edgeseg.errors import EdgesegError, first_line


def session(model, threads: int | None = 1, providers=("CPUExecutionProvider",), profile_prefix: str | None = None):
    """An InferenceSession: `threads` intra-op threads (None: ONNX Runtime's default), one inter-op thread, quiet
    logs, `providers` in order (names or (name, options)); `model` is a path or serialized bytes;
    `profile_prefix` turns ORT's profiler on. A model ORT cannot load raises a one-line EdgesegError."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    try:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts, providers=list(providers))
    except Exception as exc:  # ORT raises its own exception types
        where = "model bytes" if isinstance(model, bytes) else str(model)
        raise EdgesegError(f"{where}: cannot load ONNX model ({first_line(exc, 200)})") from None


def cpu_session(model, threads: int = 1, profile_prefix: str | None = None):
    """`session` on the CPU provider alone (verification, profiling, benchmarks)."""
    return session(model, threads, ("CPUExecutionProvider",), profile_prefix)


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


def interleaved_medians_in_processes(paths: dict, x, repeats: int, processes: int, warmup: int = 3) -> list[tuple[dict, dict]]:
    """`interleaved_medians` of the ONNX files `paths` (key -> path) on input `x`, one intra-op thread, run in
    `processes` fresh Python processes one after another: one (wall, thread-CPU) pair of dicts per process.
    A single process's medians hide what differs between processes (where the allocator put the buffers,
    what else ran then); the spread of these pairs shows it."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import numpy as np

    with tempfile.TemporaryDirectory(prefix="edgeseg-timing-") as tmp:
        np.save(Path(tmp) / "x.npy", np.ascontiguousarray(x, dtype=np.float32))
        job = json.dumps({"paths": {k: str(p) for k, p in paths.items()}, "x": str(Path(tmp) / "x.npy"),
                          "repeats": repeats, "warmup": warmup})
        out = []
        for _ in range(processes):
            done = subprocess.run([sys.executable, "-m", "edgeseg.ort"], input=job, capture_output=True, text=True)
            if done.returncode != 0:
                raise EdgesegError(f"timing process failed: {(done.stderr.strip().splitlines() or ['no message'])[-1][:200]}")
            wall, cpu = json.loads(done.stdout)
            out.append((wall, cpu))
        return out


def _time_job() -> None:
    """Child of `interleaved_medians_in_processes`: a JSON job on stdin, [wall, cpu] medians on stdout."""
    import json
    import sys

    import numpy as np

    job = json.loads(sys.stdin.read())
    x = np.load(job["x"])
    try:
        sessions = {k: cpu_session(p, threads=1) for k, p in job["paths"].items()}
    except EdgesegError as exc:
        sys.exit(str(exc))
    feeds = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}
    print(json.dumps(list(interleaved_medians(sessions, feeds, job["repeats"], job["warmup"]))))


if __name__ == "__main__":
    _time_job()
