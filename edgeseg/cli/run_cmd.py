"""edgeseg run MODEL.onnx INPUT... --out DIR: DICOM in, DICOM SEG + report + overlay out (light runtime)."""
from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("run", help="segment DICOM series with an exported ONNX model (on-device runner)",
                       description="Segment every DICOM series found in the inputs. Writes, per series, "
                       "DIR/<PatientID>_<StudyDate>/<SeriesNumber>_<SeriesDescription>/ (or, with --layout uid, "
                       "DIR/<StudyInstanceUID>/<SeriesInstanceUID>/) with seg.dcm (DICOM SEG), report.json and "
                       "overlay.png; DIR/run_report.json lists every series and skipped file. Exit code: 0 all "
                       "ok, 1 something failed, 2 bad model or output folder.")
    p.add_argument("model", help="self-describing ONNX model from 'edgeseg export'")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="DICOM files, NIfTI files (.nii, .nii.gz; needs nibabel) and/or folders (searched recursively)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--provider", default="auto", choices=["auto", "tensorrt", "cuda", "cpu"],
                   help="execution provider (auto: TensorRT FP16 > CUDA > CPU, whichever is installed)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for inference (default: onnxruntime's)")
    p.add_argument("--batch", type=int, default=8, help="slices per inference call (default 8)")
    p.add_argument("--also", action="append", choices=["nifti", "npy"], default=[],
                   help="also write the mask as NIfTI (mask.nii.gz) or NumPy (mask.npy); repeatable")
    p.add_argument("--no-overlay", action="store_true", help="skip the PNG overlay montage")
    p.add_argument("--trt-cache", default=None, help="TensorRT engine cache folder (default ~/.cache/edgeseg/trt)")
    p.add_argument("--sequential", action="store_true",
                   help="one series and one stage at a time (default: series i+1 is read and series i-1 written "
                        "while the model runs on series i)")
    p.add_argument("--select", default=None, metavar="RULES",
                   help="segment only series matching every rule, e.g. 'Modality=MR,SeriesDescription~T1' "
                        "(=, !=, ~ regex, !~); others are listed as skipped. The model's modality and "
                        "'not a localizer' always apply")
    p.add_argument("--layout", default="readable", choices=["readable", "uid"],
                   help="output folder names: readable (patient/date, series number/description; default) or uid")
    p.add_argument("--private", action="store_true", help="outputs readable by the owner only (0600/0700)")
    p.add_argument("--retry-failed", action="store_true",
                   help="also rerun series that DIR/manifest.csv lists as failed with the same model and files "
                        "(series done before are always skipped: rerunning the command resumes)")
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local (default): this process; ray: one task per series on a Ray cluster (edgeseg[scale])")
    p.add_argument("--address", default=None, help="with --engine ray: an existing cluster (auto or HOST:PORT); "
                   "default: start a local Ray")
    p.add_argument("--workers", type=int, default=None, help="with --engine ray: model-holding workers "
                   "(default: the CPU count)")
    p.add_argument("--quiet", action="store_true", help="print nothing but failures (no progress, no summary)")
    p.set_defaults(func=run)


def print_summary(rows, info, file=None) -> None:
    """The run summary table: rich on a terminal when installed, plain text otherwise (logs, pipes)."""
    file = file or sys.stdout
    head = ("series / file", "slices", "status", "time s", "reason / warnings")
    data = [(r.name, str(r.slices or ""), r.status, f"{r.seconds:.2f}" if r.seconds else "", r.reason) for r in rows]
    title = f"edgeseg run: provider {info['provider']}, " + ", ".join(
        f"{sum(r.status == s for r in rows)} {s}" for s in ("ok", "failed", "skipped", "ignored")) + (
        f", {sum(r.status == 'done' for r in rows)} done before" if any(r.status == "done" for r in rows) else "")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None
    if Console is not None and file is sys.stdout and file.isatty():
        table = Table(title=title)
        for h in head:
            table.add_column(h, overflow="fold")
        style = {"ok": "green", "failed": "red", "ignored": "yellow", "skipped": "cyan", "done": "green"}
        for row in data:
            table.add_row(*row[:2], f"[{style[row[2]]}]{row[2]}[/]", *row[3:])
        Console(width=max(120, Console().width)).print(table)
        return
    print(title, file=file)
    widths = [max(len(h), *(len(r[i]) for r in data)) if data else len(h) for i, h in enumerate(head[:-1])]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)) + "  " + head[-1], file=file)
    for row in data:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[-1], file=file)


def run(args) -> int:
    from edgeseg.runtime.pipeline import Options
    from edgeseg.runtime.pipeline import run as run_pipeline

    from edgeseg.runtime.select import parse_rules

    opts = Options(provider=args.provider, threads=args.threads, batch=args.batch, also=tuple(dict.fromkeys(args.also)),
                   overlay=not args.no_overlay, cache_dir=args.trt_cache,
                   pipeline=not args.sequential, select=parse_rules(args.select),
                   layout=args.layout, private=args.private, retry_failed=args.retry_failed)
    if args.engine == "ray":
        from edgeseg.scale.ray_engine import run as run_ray

        rows, info = run_ray(args.model, args.inputs, args.out, opts, args.address, args.workers,
                             show_progress=not args.quiet)
    else:
        rows, info = run_pipeline(args.model, args.inputs, args.out, opts, show_progress=not args.quiet)
    if not args.quiet:
        print(f"provider: {info['provider']}" + (f" (session {info['session_s']:.2f} s)" if "session_s" in info else
              f" (Ray start {info.get('ray_start_s', 0):.1f} s)"), file=sys.stderr)
    for warning in info.get("warnings", []):  # a degraded run (no SEG writer) is said even when quiet
        print(f"edgeseg run: warning: {warning}", file=sys.stderr)
    failed = [r for r in rows if r.status == "failed"]
    if not args.quiet:
        print_summary(rows, info)
    elif failed:
        print_summary(failed, info)
    if info.get("run_report_error"):
        print(f"edgeseg run: {info['run_report_error']}", file=sys.stderr)
        return 1
    if not any(r.status in ("ok", "failed", "done") for r in rows):
        skipped = sum(r.status == "skipped" for r in rows)
        print(f"edgeseg run: no series segmented ({skipped} skipped by the selection rules)" if skipped else
              "edgeseg run: no DICOM image series found in the inputs", file=sys.stderr)
        return 1
    return 1 if any(r.status == "failed" for r in rows) else 0
