"""Run a model over DICOM (and NIfTI) inputs: every series through load -> infer -> write (`stages`).

By default the stages overlap across series: a reader thread loads series i+1 and a writer thread
writes series i-1 while the main thread runs the model on series i (onnxruntime releases the GIL;
pydicom and highdicom are Python). At most one series is read ahead and two wait to be written, so
memory stays bounded. `Options(pipeline=False)` (`edgeseg run --sequential`) runs one stage at a time.

A series that fails gets a one-line reason and the batch goes on; outputs of a series appear only
once all its files are complete (written to a hidden temporary folder, then renamed).
"""
from __future__ import annotations

import os
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from edgeseg.errors import EdgesegError, first_line
from edgeseg.runtime import discover as disc
from edgeseg.results.manifest import Manifest, inputs_key
from edgeseg.runtime.nifti_input import process_nifti
from edgeseg.results.report import write_json
from edgeseg.runtime.select import skip_reason
from edgeseg.runtime.session import Segmenter
from edgeseg.runtime.stages import infer_series, load_series, process_series, write_series

__all__ = ["Options", "Row", "check_out_dir", "process_series", "run"]
WRITE_QUEUE = 2  # series waiting for the writer before the main thread waits for it


@dataclass
class Options:
    provider: str = "auto"
    threads: int | None = None
    batch: int = 8
    also: tuple[str, ...] = ()          # "nifti", "npy"
    overlay: bool = True
    seg: bool = True
    cache_dir: str | None = None
    pipeline: bool = True               # overlap reading, inference and writing across series
    select: tuple = ()                  # select.Rule: series that do not match are skipped
    layout: str = "readable"            # outputs.LAYOUTS: readable names or UIDs
    private: bool = False               # outputs 0600/0700 instead of 0644/0755
    retry_failed: bool = False          # series the manifest lists as failed with the same inputs: try again


@dataclass
class Row:
    name: str
    slices: int = 0
    status: str = "ok"                  # ok | failed | ignored | skipped (not for this model) | done (in an earlier run)
    reason: str = ""
    seconds: float = 0.0
    out: str = ""
    report: dict = field(default_factory=dict)


def check_out_dir(out: Path) -> None:
    """Create --out and prove it is writable, or raise a one-line EdgesegError."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".edgeseg-write-test")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise EdgesegError(f"output folder {out} is not writable ({exc.strerror or exc})") from exc


def os_reason(exc: OSError) -> str:
    """'PATH: No space left on device' — the file and the system's words, one line."""
    where = exc.filename or "output"
    return f"{where}: {exc.strerror or type(exc).__name__}" + (f" (-> {exc.filename2})" if exc.filename2 else "")


def write_run_report(out: Path, info: dict, rows) -> None:
    """OUT/run_report.json: the run's facts and one item per series or file; a failure to write it is put
    in info["run_report_error"] (the CLI says it in one line and exits 1)."""
    try:
        write_json(out / "run_report.json", {**info, "items": [
            {"name": r.name, "slices": r.slices, "status": r.status, "reason": r.reason,
             "seconds": round(r.seconds, 3), "out": r.out} for r in rows]})
    except OSError as exc:
        info["run_report_error"] = f"{out / 'run_report.json'}: not written ({exc.strerror or exc})"


def failure_row(name: str, slices: int, exc: BaseException, start: float) -> Row:
    """The one-line reason for an exception that ended one series (the batch goes on)."""
    if isinstance(exc, EdgesegError):
        reason = str(exc)
    elif isinstance(exc, MemoryError):
        reason = "out of memory"
    elif isinstance(exc, OSError):  # disk full, permissions, a file that vanished: name the file and the error
        reason = os_reason(exc)
    else:  # a bug or an input no check foresaw: report it, keep going
        reason = f"unexpected {type(exc).__name__}: {first_line(exc)}"
    return Row(name, slices, "failed", reason, time.perf_counter() - start)


def attempt(name: str, slices: int, work, start: float | None = None) -> Row:
    """work() -> its Row, or the failure row of the exception that ended it (timed from `start`)."""
    start = time.perf_counter() if start is None else start
    try:
        return work()
    except Exception as exc:
        return failure_row(name, slices, exc, start)


def _sequential(seg, jobs, out, opts, done) -> None:
    for i, (g, kwargs) in enumerate(jobs):
        done(i, attempt(g.series_uid, len(g.instances), partial(process_series, seg, g, out, opts, **kwargs)))


def _pipelined(seg, jobs, out, opts, done) -> None:
    """load(i+1) | infer(i) | write(i-1); `done(i, row)` is called for each series as it finishes."""
    with ThreadPoolExecutor(1, thread_name_prefix="edgeseg-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="edgeseg-write") as writer:
        def load(i):
            g, kwargs = jobs[i]
            return reader.submit(load_series, g, seg.contract, **kwargs)

        def finish(entry):
            i, start, future = entry
            g = jobs[i][0]
            done(i, attempt(g.series_uid, len(g.instances), future.result, start))

        writes: deque = deque()
        next_load = load(0) if jobs else None
        for i, (g, _) in enumerate(jobs):
            start, current = time.perf_counter(), next_load
            next_load = load(i + 1) if i + 1 < len(jobs) else None
            try:
                inferred = infer_series(seg, current.result(), opts.batch)
            except Exception as exc:
                done(i, failure_row(g.series_uid, len(g.instances), exc, start))
                continue
            while len(writes) >= WRITE_QUEUE:
                finish(writes.popleft())
            writes.append((i, start, writer.submit(write_series, seg, inferred, out, opts)))
        while writes:
            finish(writes.popleft())


def run(model: str | Path, inputs, out: str | Path, opts: Options = Options(), show_progress: bool = True):
    """Process every series under `inputs` (a file or folder path, or a list of them); returns (rows, info).
    Fatal user errors raise EdgesegError."""
    from edgeseg.progress import progress

    out = Path(out)
    t0 = time.perf_counter()
    seg = Segmenter(model, opts.provider, opts.threads, opts.cache_dir)
    info = {"model": str(model), "provider": seg.provider, "session_s": round(time.perf_counter() - t0, 3),
            "pipeline": opts.pipeline}
    check_out_dir(out)
    notes: list[str] = []
    if opts.seg:
        from edgeseg.results.seg_writer import require_highdicom

        try:
            require_highdicom()
        except EdgesegError as exc:
            # the bare base install still segments: the mask as NIfTI (numpy + gzip only) instead of the SEG
            opts = replace(opts, seg=False, also=tuple(dict.fromkeys((*opts.also, "nifti"))))
            notes.append(f"DICOM SEG not written ({exc}); mask.nii.gz instead")
    info["warnings"] = notes
    t0 = time.perf_counter()
    niftis: list[Path] = []
    groups, skipped = disc.discover(inputs, nifti=niftis)
    discover_s = time.perf_counter() - t0
    n_instances = sum(len(g.instances) for g in groups) or 1
    rows = [Row(str(s.path), 0, "failed" if s.failed else "ignored", s.reason) for s in skipped]
    lost: dict[str, list] = {}
    for s in skipped:
        if s.failed and s.series_uid:
            lost.setdefault(s.series_uid, []).append((s.path, s.reason))
    manifest = Manifest(out / "manifest.csv")
    jobs, keys = [], []
    for g in groups:
        why_not = skip_reason(g.instances[0].header, seg.contract, opts.select)
        key = inputs_key([i.path for i in g.instances], seg.model_id)
        before = "" if why_not else manifest.due(g.series_uid, key, opts.retry_failed)
        if why_not:
            rows.append(Row(g.series_uid, len(g.instances), "skipped", why_not))
        elif before:  # resumed: done (or failed) before with this model and these very files
            last = manifest.last[g.series_uid]
            rows.append(Row(g.series_uid, len(g.instances), "done" if last["status"] == "ok" else "failed", before,
                            out=last.get("out", "")))
        else:
            jobs.append((g, {"read_s": discover_s * len(g.instances) / n_instances, "notes": notes,
                             "lost": lost.get(g.series_uid, ())}))
            keys.append(key)
    t0 = time.perf_counter()
    results: list[Row | None] = [None] * len(jobs)
    with progress("segmenting", total=len(jobs) + len(niftis), enabled=show_progress) as advance:
        def done(i: int, row: Row) -> None:
            g = jobs[i][0]
            results[i] = row
            manifest.record(g.series_uid, g.study_uid, keys[i], row)
            n = sum(r is not None for r in results)
            advance(1, series_per_s=round(n / max(time.perf_counter() - t0, 1e-9), 2))

        for path in niftis:
            rows.append(attempt(str(path), 0, partial(process_nifti, seg, path, out, opts)))
            advance(1)
        (_pipelined if opts.pipeline else _sequential)(seg, jobs, out, opts, done)
    rows += results
    info["discover_s"] = round(discover_s, 3)
    info["segment_wall_s"] = round(time.perf_counter() - t0, 3)
    write_run_report(out, info, rows)
    return rows, info
