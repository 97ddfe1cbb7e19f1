"""`edgeseg run --engine ray`: the same per-series function as the local engine, as Ray actor tasks.

The driver indexes the archive first, streaming through the files and keeping only paths and UIDs
(a few tags read per file, no pixels, no full headers: memory grows with the number of files, not their
size). Each series is one task on a pool of actors, each of which loads the model once; the task runs
`stages.process_series` on the series' files, exactly as `edgeseg run` does, and returns its row. The
driver writes OUT/manifest.csv as results arrive, so a rerun resumes (results/manifest.py). A worker
that dies mid-series is restarted by Ray and the task retried; the output is published by one atomic
rename, so it is written once, and the manifest gets one row.

Without `address` a local Ray is started with `workers` CPUs; with it (`auto` or HOST:PORT) an existing
cluster is joined (docs/scale.md). Needs `pip install '.[scale]'` (ray); the light runtime never imports it.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from edgeseg.errors import require
from edgeseg.runtime import discover as disc
from edgeseg.results.manifest import Manifest, inputs_key
from edgeseg.runtime.pipeline import Options, Row, check_out_dir, failure_row, write_run_report

INDEX_TAGS = ["SeriesInstanceUID", "StudyInstanceUID", "Rows", "Columns", "SOPClassUID"]


def _ray():
    return require("ray", "--engine ray needs ray: pip install '.[scale]'")


def index_series(inputs) -> tuple[dict[str, tuple[str, list[Path]]], list[Row]]:
    """series UID -> (study UID, files), reading only a few tags per file; rows for files that are no
    image (the workers check everything else, exactly as the local engine)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    series: dict[str, tuple[str, list[Path]]] = {}
    rows: list[Row] = []
    for path, explicit in disc.iter_files(inputs):
        if not path.exists():
            rows.append(Row(str(path), 0, "failed", "no such file or folder"))
            continue
        odd = disc.not_regular(path)
        if odd:
            rows.append(Row(str(path), 0, "failed" if explicit else "ignored", odd))
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=INDEX_TAGS, force=True)
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            rows.append(Row(str(path), 0, "failed", f"unreadable DICOM header ({str(exc)[:120]})"))
            continue
        uid = str(ds.get("SeriesInstanceUID", "") or "")
        if not uid:  # everything with a series goes to a worker, which checks it as the local engine does
            why = "not a DICOM file" if not len(ds) else "not an image (no SeriesInstanceUID)"
            rows.append(Row(str(path), 0, "failed" if explicit else "ignored", why))
            continue
        series.setdefault(uid, (str(ds.get("StudyInstanceUID", "") or ""), []))[1].append(path)
    return series, rows


def _worker_class(ray):
    @ray.remote(max_restarts=-1, max_task_retries=-1)
    class SeriesWorker:
        """Holds one model session; segments whole series by the local engine's own functions."""

        def __init__(self, model: str, opts: dict):
            from edgeseg.runtime.session import Segmenter

            from edgeseg.runtime.select import Rule

            self.opts = Options(**{**opts, "select": tuple(Rule(**r) for r in opts.get("select", ()))})
            self.seg = Segmenter(model, self.opts.provider, self.opts.threads, self.opts.cache_dir)

        def pid(self) -> int:
            return os.getpid()

        def process(self, series_uid: str, paths: list[str], out: str) -> list[dict]:
            from edgeseg.runtime.select import skip_reason
            from edgeseg.runtime.stages import process_series

            start = time.perf_counter()
            groups, skipped = disc.discover([Path(p) for p in paths])
            rows = [Row(str(s.path), 0, "failed" if s.failed else "ignored", s.reason) for s in skipped]
            lost = [(s.path, s.reason) for s in skipped if s.failed]
            for g in groups:
                why_not = skip_reason(g.instances[0].header, self.seg.contract, self.opts.select)
                if why_not:
                    rows.append(Row(g.series_uid, len(g.instances), "skipped", why_not))
                    continue
                try:
                    rows.append(process_series(self.seg, g, Path(out), self.opts, lost=lost))
                except Exception as exc:
                    rows.append(failure_row(g.series_uid, len(g.instances), exc, start))
            return [{**dataclasses.asdict(r), "report": {}} for r in rows]

    return SeriesWorker


def run(model, inputs, out, opts: Options = Options(), address: str | None = None, workers: int | None = None,
        show_progress: bool = True, on_started=None):
    """Like pipeline.run, on Ray: returns (rows, info). `on_started(actors)` is called once the pool is up
    (the tests use it to kill a worker)."""
    from edgeseg.progress import progress

    ray = _ray()
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = Path(out).resolve()
    check_out_dir(out)
    from edgeseg.runtime.session import Segmenter

    model_id = Segmenter(model, "cpu", 1).model_id  # the model is checked once here, before any worker starts
    t0 = time.perf_counter()
    series, rows = index_series(inputs)
    info = {"model": str(model), "engine": "ray", "index_s": round(time.perf_counter() - t0, 3)}
    manifest = Manifest(out / "manifest.csv")
    jobs = []
    for uid, (study, paths) in sorted(series.items()):
        key = inputs_key(paths, model_id)
        before = manifest.due(uid, key, opts.retry_failed)
        if before:
            last = manifest.last[uid]
            rows.append(Row(uid, len(paths), "done" if last["status"] == "ok" else "failed", before, out=last["out"]))
        else:
            jobs.append((uid, study, key, [str(p) for p in paths]))
    t0 = time.perf_counter()
    n_workers = max(1, int(workers or os.cpu_count() or 1))
    if not ray.is_initialized():
        ray.init(address=address or None, num_cpus=None if address else n_workers, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    worker_opts = dataclasses.asdict(replace_threads(opts))
    actors = [_worker_class(ray).options(num_cpus=1).remote(str(Path(model).resolve()), worker_opts)
              for _ in range(min(n_workers, max(1, len(jobs))))]
    ray.get([a.pid.remote() for a in actors])
    info["ray_start_s"] = round(time.perf_counter() - t0, 3)
    if on_started is not None:
        on_started(actors)
    t0 = time.perf_counter()
    pool = ray.util.ActorPool(actors)
    for uid, _, _, paths in jobs:
        pool.submit(lambda a, job: a.process.remote(*job), (uid, paths, str(out)))
    by_uid = {uid: (study, key) for uid, study, key, _ in jobs}
    with progress("segmenting", total=len(jobs), enabled=show_progress) as advance:
        done = 0
        while pool.has_next():
            for r in (Row(**r) for r in pool.get_next_unordered()):
                rows.append(r)
                if r.name in by_uid:  # the series' own row (file rows of its broken instances are not recorded)
                    manifest.record(r.name, *by_uid[r.name], r)
            done += 1
            advance(1, series_per_s=round(done / max(time.perf_counter() - t0, 1e-9), 2))
    info["segment_wall_s"] = round(time.perf_counter() - t0, 3)
    info["workers"] = len(actors)
    info["provider"] = f"{opts.provider} on {len(actors)} Ray worker(s)"
    write_run_report(out, info, rows)
    return rows, info


def replace_threads(opts: Options) -> Options:
    """One inference thread per worker unless told otherwise: the workers are the parallelism."""
    return dataclasses.replace(opts, threads=opts.threads or 1, pipeline=False)
