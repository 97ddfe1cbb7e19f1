"""Run a model over DICOM inputs: one series at a time, each stage timed, atomic output folders.

A series that fails gets a one-line reason and the batch goes on; outputs of a series appear only
once all its files are complete (written to a hidden temporary folder, then renamed).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path


from edgeseg.errors import EdgesegError
from edgeseg.runtime import discover as disc
from edgeseg.runtime.colours import legend
from edgeseg.runtime.outputs import publish, series_folder, set_modes
from edgeseg.runtime.pixels import decode_series
from edgeseg.runtime.report import series_report, volumes_ml, write_json
from edgeseg.runtime.safe_paths import inside
from edgeseg.runtime.segment import segment_volume
from edgeseg.runtime.select import skip_reason
from edgeseg.runtime.series import build_series
from edgeseg.runtime.session import Segmenter


@dataclass
class Options:
    provider: str = "auto"
    threads: int | None = None
    batch: int = 8
    also: tuple[str, ...] = ()          # "nifti", "npy"
    overlay: bool = True
    seg: bool = True
    cache_dir: str | None = None
    overlap: bool = True                # prepare the SEG's header on a second thread while the model infers
    select: tuple = ()                  # select.Rule: series that do not match are skipped
    layout: str = "readable"            # outputs.LAYOUTS: readable names or UIDs
    private: bool = False               # outputs 0600/0700 instead of 0644/0755


@dataclass
class Row:
    name: str
    slices: int = 0
    status: str = "ok"                  # ok | failed | ignored | skipped (a series --select or the contract excludes)
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


_SEG_THREAD: ThreadPoolExecutor | None = None


def _prepare_seg_async(series, contract, model_id) -> Future:
    """Start the SEG's header (headers only, no mask needed) on the one SEG thread. It is pure Python
    while inference runs in onnxruntime without the GIL, so a second core takes it off the critical path
    (at some cost to inference where the two share a physical core: `edgeseg bench runner` shows both)."""
    global _SEG_THREAD
    from edgeseg.runtime.seg_prepared import prepare_seg

    if _SEG_THREAD is None:
        _SEG_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgeseg-seg")
    return _SEG_THREAD.submit(prepare_seg, series, contract, model_id)


def _dropped_note(dropped) -> str:
    names = [f"{Path(f).name} ({why})" for f, why in dropped[:5]]
    more = f" and {len(dropped) - 5} more" if len(dropped) > 5 else ""
    return f"{len(dropped)} file(s) of this series left out: {'; '.join(names)}{more}"


def process_series(seg: Segmenter, group: disc.SeriesGroup, out: Path, opts: Options, read_s: float = 0.0,
                   notes=(), lost=()) -> Row:
    """Segment one series into OUT/<study>/<series>/. `lost`: (file, why) of its instances that discovery
    could not read (truncated, unreadable); they are named in the warnings and the report."""
    from edgeseg.runtime.mask_files import write_mask
    from edgeseg.runtime.overlay import write_overlay
    from edgeseg.runtime.seg_prepared import prepare_seg

    c = seg.contract
    t = {"read": read_s}
    t0 = time.perf_counter()
    series = build_series(group)
    dropped = [*((str(f), why) for f, why in lost), *series.dropped]
    warnings = [*notes, *series.warnings, *([_dropped_note(dropped)] if dropped else [])]
    if c.modality and series.modality and series.modality != c.modality:
        raise EdgesegError(f"modality {series.modality}: the model was trained for {c.modality} only")
    if not series.modality:
        warnings.append(f"no Modality in the header; assumed {c.modality}")
    decoded = decode_series(series)
    volume = decoded.values
    t["read"] += time.perf_counter() - t0
    prepared = _prepare_seg_async(series, c, seg.model_id) if opts.seg and opts.overlap else None
    mask, more = segment_volume(seg, volume, series.spacing, series.orientation, series.slice_spacing, decoded,
                                opts.batch, t)
    warnings += more
    t0 = time.perf_counter()
    overlapped: dict[str, float] = {}
    final = series_folder(out, series, opts.layout)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        inside(out, final)  # again after mkdir: a link created meanwhile is caught before anything is written
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    except OSError as exc:
        raise EdgesegError(f"{final.parent}: cannot create the output folder ({exc.strerror or exc})") from exc
    try:
        outputs = []
        if opts.seg:
            header = prepared.result() if prepared is not None else prepare_seg(series, c, seg.model_id)
            header.write(mask, tmp / "seg.dcm")
            if prepared is not None:
                overlapped["seg_header"] = round(header.seconds, 4)
            outputs.append("seg.dcm")
        for kind in opts.also:
            name = "mask.nii.gz" if kind == "nifti" else "mask.npy"
            write_mask(tmp / name, mask, series, kind)
            outputs.append(name)
        if opts.overlay:
            write_overlay(tmp / "overlay.png", volume, mask, c.class_names)
            outputs.append("overlay.png")
        t["write"] = time.perf_counter() - t0
        volumes = volumes_ml(mask, series.spacing, series.slice_spacing, c.class_names)
        report = series_report(series, c, seg.path, seg.provider, opts.threads, t, volumes, outputs + ["report.json"], warnings)
        report["overlapped_s"] = overlapped  # ran on the SEG thread during inference: not in total_s
        report["dropped_files"] = [{"file": str(f), "reason": why} for f, why in dropped]
        report["colours"] = legend(c.class_names)  # as in the SEG's segments and the overlay's legend
        write_json(tmp / "report.json", report)
        t["write"] = time.perf_counter() - t0
        report["timings_s"]["write"] = round(t["write"], 4)
        set_modes(tmp, opts.private)
        publish(tmp, final)
    except OSError as exc:  # disk full, no inodes...: nothing half-written stays, the reason names the folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise EdgesegError(f"{final}: cannot write the outputs ({exc.strerror or exc})") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Row(series.series_uid, len(series.frames), "ok", "; ".join(warnings), sum(t.values()), str(final), report)


def run(model: str | Path, inputs, out: str | Path, opts: Options = Options(), show_progress: bool = True):
    """Process every series under `inputs` (a file or folder path, or a list of them); returns (rows, info).
    Fatal user errors raise EdgesegError."""
    from edgeseg.progress import progress

    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]  # a path, not an iterable of characters
    out = Path(out)
    t0 = time.perf_counter()
    seg = Segmenter(model, opts.provider, opts.threads, opts.cache_dir)
    info = {"model": str(model), "provider": seg.provider, "session_s": round(time.perf_counter() - t0, 3)}
    check_out_dir(out)
    notes: list[str] = []
    if opts.seg:
        t0 = time.perf_counter()
        from edgeseg.runtime.seg_writer import _highdicom, warm_up

        try:
            _highdicom()  # load the SEG writer once, up front
        except EdgesegError as exc:
            # the bare base install still segments: the mask as NIfTI (numpy + gzip only) instead of the SEG
            opts = replace(opts, seg=False, also=tuple(dict.fromkeys((*opts.also, "nifti"))))
            notes.append(f"DICOM SEG not written ({exc}); mask.nii.gz instead")
        else:
            warm_up()
        info["seg_writer_import_s"] = round(time.perf_counter() - t0, 3)
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
    with progress("segmenting", total=len(groups) + len(niftis), enabled=show_progress) as advance:
        for path in niftis:
            rows.append(_run_nifti(seg, path, out, opts))
            advance(1)
        for g in groups:
            start = time.perf_counter()
            share = discover_s * len(g.instances) / n_instances
            why_not = skip_reason(g.instances[0].header, seg.contract, opts.select)
            if why_not:
                rows.append(Row(g.label, len(g.instances), "skipped", why_not))
                advance(1)
                continue
            try:
                rows.append(process_series(seg, g, out, opts, read_s=share, notes=notes,
                                           lost=lost.get(g.series_uid, ())))
            except EdgesegError as exc:
                rows.append(Row(g.label, len(g.instances), "failed", str(exc), time.perf_counter() - start))
            except MemoryError:
                rows.append(Row(g.label, len(g.instances), "failed", "out of memory", time.perf_counter() - start))
            except OSError as exc:  # disk full, permissions, a file that vanished: name the file and the error
                rows.append(Row(g.label, len(g.instances), "failed", os_reason(exc), time.perf_counter() - start))
            except Exception as exc:  # a bug or an input no check foresaw: report it, keep going
                text = (str(exc).strip().splitlines() or [""])[0][:160]
                rows.append(Row(g.label, len(g.instances), "failed", f"unexpected {type(exc).__name__}: {text}",
                                time.perf_counter() - start))
            advance(1)
    info["discover_s"] = round(discover_s, 3)
    try:
        write_json(out / "run_report.json", {**info, "items": [
            {"name": r.name, "slices": r.slices, "status": r.status, "reason": r.reason,
             "seconds": round(r.seconds, 3), "out": r.out} for r in rows]})
    except OSError as exc:
        info["run_report_error"] = f"{out / 'run_report.json'}: not written ({exc.strerror or exc})"
    return rows, info


def _run_nifti(seg: Segmenter, path: Path, out: Path, opts: Options) -> Row:
    from edgeseg.runtime.nifti_input import process_nifti

    start = time.perf_counter()
    try:
        return process_nifti(seg, path, out, opts)
    except EdgesegError as exc:
        return Row(str(path), 0, "failed", str(exc), time.perf_counter() - start)
    except OSError as exc:
        return Row(str(path), 0, "failed", os_reason(exc), time.perf_counter() - start)


def os_reason(exc: OSError) -> str:
    """'PATH: No space left on device' — the file and the system's words, one line."""
    where = exc.filename or "output"
    return f"{where}: {exc.strerror or type(exc).__name__}" + (f" (-> {exc.filename2})" if exc.filename2 else "")
