"""On-device runner: per-stage time, slices/s, inference share, start-up and peak RSS vs PyTorch full-res.

Each ONNX model runs `edgeseg.runtime` in its own process (so start-up and peak RSS are the runner's
alone) on `--copies` copies of the bundled sample series (distinct series UIDs, as a scanner's batch),
`--repeats` times in each mode, the two modes interleaved; the median repeat of each is reported.
*sequential*: one series and one stage at a time (`edgeseg run --sequential`); *pipelined* (the default):
series i+1 is read and series i-1 written while the model runs on series i. The reference is what a
user would otherwise run: the same backbone in PyTorch on full-resolution slices, without the SR head.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from edgeseg.bench.report import machine_line, write_section
from edgeseg.results.report import STAGES
MODES = ("sequential", "pipelined")

_CHILD = r"""
import json, resource, sys, tempfile, time
t0 = time.perf_counter()
from edgeseg.runtime.pipeline import Options, run
from edgeseg.results.report import STAGES
from edgeseg.runtime.session import Segmenter
t_import = time.perf_counter() - t0
Segmenter(sys.argv[1], "cpu", int(sys.argv[3]))
t_start = time.perf_counter() - t0
t0 = time.perf_counter()
from edgeseg.results.seg_writer import require_highdicom
require_highdicom()
t_seg = time.perf_counter() - t0
runs = {"sequential": [], "pipelined": []}
for _ in range(int(sys.argv[4])):
    for mode in runs:  # interleaved, so that machine noise reaches both modes alike
        with tempfile.TemporaryDirectory() as out:
            rows, info = run(sys.argv[1], [sys.argv[2]], out, Options(provider="cpu", threads=int(sys.argv[3]), batch=8,
                             pipeline=mode == "pipelined"), show_progress=False)
        ok = [r for r in rows if r.status == "ok"]
        assert len(ok) == len(rows), [r.reason for r in rows]
        stages = {k: sum(r.report["timings_s"][k] for r in ok) for k in STAGES}
        runs[mode].append({"wall_s": info["segment_wall_s"] + info["discover_s"], "stages_s": stages,
                           "slices": sum(r.slices for r in ok), "series": len(ok), "report": ok[0].report})
median = {mode: sorted(reps, key=lambda r: r["wall_s"])[len(reps) // 2] for mode, reps in runs.items()}
print(json.dumps({"import_s": t_import, "startup_s": t_start, "seg_setup_s": t_seg, "runs": median, "info": info,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_TORCH = r"""
import json, sys, time
import numpy as np, torch
from edgeseg.contract import read_contract
from edgeseg.models import create_model
torch.set_num_threads(int(sys.argv[2]))
c = read_contract(sys.argv[1])
n, reps = int(sys.argv[3]), int(sys.argv[4])
model = create_model(c.model_name, 1, len(c.class_names), 1, sr_head=False, width=int(sys.argv[5])).eval()
x = torch.randn(n, 1, *c.hr_size)
best = 1e9
with torch.no_grad():
    for _ in range(reps):
        t = time.perf_counter()
        for i in range(0, n, 8):
            model(x[i:i + 8]).argmax(1)
        best = min(best, time.perf_counter() - t)
print(json.dumps({"infer_s": best, "slices": n}))
"""


def add_arguments(p) -> None:
    p.add_argument("--model", action="append", default=[], metavar="LABEL=PATH",
                   help="ONNX model to measure (repeatable), e.g. fp32=export/x.fp32-sim.onnx int8=export/x.int8.onnx; "
                        "default: the released export/unet-s2-brain-nano models, else random-weight stand-ins")
    p.add_argument("--series", default="data/sample-mr-brain", help="DICOM series folder (default: the sample)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--copies", type=int, default=4, help="copies of the series in one run (default 4)")
    p.add_argument("--width", type=int, default=8, help="backbone width of the PyTorch reference (recipe default 8)")
    p.add_argument("--out", default="docs/BENCHMARKS.md")
    p.set_defaults(func=run)


def _released() -> dict[str, Path]:
    folder = Path("export/unet-s2-brain-nano")
    found = {"fp32": sorted(folder.glob("*.fp32-sim.onnx")), "int8": sorted(folder.glob("*.int8.onnx"))}
    return {k: v[0] for k, v in found.items() if v}


def stand_in_models(folder: Path, series: str, width: int) -> dict[str, Path]:
    """Random-weight unet (FP32) and its static INT8 QDQ quantisation: same graph and cost as a trained one."""
    import numpy as np
    import torch
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from edgeseg.export.quantize import calibration_reader
    from edgeseg.export.to_onnx import export_onnx, set_metadata
    from edgeseg.models import create_model
    from edgeseg.runtime.discover import discover
    from edgeseg.runtime.pixels import decode_series
    from edgeseg.runtime.preprocess import prepare
    from edgeseg.runtime.series import build_series
    from edgeseg.contract import ModelContract

    c = ModelContract(model_name="unet", class_names=("background", "grey_matter", "white_matter"),
                      label_values=(0, 1, 2), scale=2, hr_size=(224, 192), input_shape=(1, 1, 112, 96),
                      data_identity="random weights (benchmark stand-in)")
    torch.manual_seed(0)
    fp32 = export_onnx(create_model("unet", 1, 3, 2, width=width), c, folder / "standin.fp32.onnx", 13)
    s = build_series(discover([series])[0][0])
    x, _ = prepare(decode_series(s).values, s.orientation, s.spacing, c)
    int8 = folder / "standin.int8.onnx"
    quantize_static(str(fp32), str(int8), calibration_reader(x[::4].astype(np.float32), c.input_name),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8)
    import onnx

    proto = onnx.load(str(int8))
    set_metadata(proto, ModelContract(**{**c.__dict__, "precision": "int8"}))
    onnx.save(proto, str(int8))
    return {"fp32": fp32, "int8": int8}


def _child(code: str, *args) -> dict:
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _copies(series: str, n: int, folder: Path) -> Path:
    """n copies of the series with their own series and instance UIDs (deterministic)."""
    from edgeseg.data.copy_series import write_series_copy

    for i in range(n):
        write_series_copy(sorted(Path(series).glob("*.dcm")), folder / f"s{i}", f"bench-runner-{i}")
    return folder


def run(args) -> int:
    tmp = tempfile.TemporaryDirectory()
    models = dict(m.split("=", 1) for m in args.model) if args.model else _released()
    note = "released models"
    if not models:
        models, note = stand_in_models(Path(tmp.name), args.series, args.width), \
            f"random-weight stand-ins (unet width {args.width}, static INT8 QDQ): no released model under export/ yet"
    batch = _copies(args.series, args.copies, Path(tmp.name) / "batch")
    load_before = os.getloadavg()
    results = {label: _child(_CHILD, path, batch, args.threads, args.repeats) for label, path in models.items()}
    load_after = os.getloadavg()
    first = next(iter(results.values()))["runs"]["sequential"]
    rep0, n_total = first["report"], first["slices"]
    n = rep0["series"]["slices"]
    ref = _child(_TORCH, next(iter(models.values())), args.threads, n, args.repeats, args.width)
    ref_sps = n / ref["infer_s"]
    lines = [f"{args.copies} copies of `{args.series}` in one run ({args.copies} series, {n_total} slices "
             f"{rep0['series']['rows']}x{rep0['series']['columns']}), {args.threads} inference thread(s), CPU provider, "
             f"the median of {args.repeats} repeats (by wall time) per mode, the two modes interleaved; models: {note}.", "",
             "*sequential*: one series and one stage at a time (`edgeseg run --sequential`). *pipelined* (the "
             "default): series i+1 is read and decoded on a reader thread and series i-1's SEG, overlay and report "
             "written on a writer thread while onnxruntime runs on series i (it releases the GIL). Stage columns are "
             "the sum over the series of each stage's own time (in the pipelined mode they overlap, so they add up "
             "to more than the wall time); *inference share* is inference time / wall time.", "",
             "| model | mode | " + " | ".join(f"{s} ms/slice" for s in STAGES) +
             " | wall ms/slice | slices/s | inference share | start-up s (import + session) | peak RSS MB | x PyTorch ref |",
             "|" + "---|" * (len(STAGES) + 8)]
    verdicts = []
    for label, r in results.items():
        for mode in MODES:
            m = r["runs"][mode]
            per = [1000 * m["stages_s"][s] / m["slices"] for s in STAGES]
            sps = m["slices"] / m["wall_s"]
            share = m["stages_s"]["infer"] / m["wall_s"]
            lines.append(f"| {label} (`{Path(models[label]).name}`) | {mode} | " + " | ".join(f"{v:.2f}" for v in per)
                         + f" | {1000 * m['wall_s'] / m['slices']:.2f} | {sps:.1f} | {100 * share:.0f} % | "
                         f"{r['startup_s']:.2f} ({r['import_s']:.2f} + {r['startup_s'] - r['import_s']:.2f}) | "
                         f"{r['peak_rss_mb']:.0f} | {sps / ref_sps:.2f} |")
            verdicts.append(f"{label} {mode}: {100 * share:.1f} % ({'met' if share >= 0.70 else 'not met'})")
        seq, pip = r["runs"]["sequential"], r["runs"]["pipelined"]
        verdicts[-1] += (f"; pipelined vs sequential for {label}: throughput x{seq['wall_s'] / pip['wall_s']:.2f}, "
                         f"inference itself x{seq['stages_s']['infer'] / pip['stages_s']['infer']:.2f} "
                         "(the reader and writer threads compete for the same cores)")
    lines += ["", f"PyTorch reference (same backbone, full resolution {rep0['model']['hr_size'][0]}x"
              f"{rep0['model']['hr_size'][1]}, no SR head, inference + argmax only): {1000 * ref['infer_s'] / n:.2f} ms/slice, "
              f"{ref_sps:.1f} slices/s. The runner's figures include reading, decoding and writing DICOM SEG (highdicom + "
              "pydicom), report and overlay; importing highdicom "
              f"({next(iter(results.values()))['seg_setup_s']:.2f} s) is not in any series.",
              "", "Issue 6 target: inference >= 70 % of the end-to-end time. " + "; ".join(verdicts) + ".",
              "", f"Machine load (os.getloadavg, 1/5/15 min): "
              f"{'/'.join(f'{v:.2f}' for v in load_before)} before, {'/'.join(f'{v:.2f}' for v in load_after)} after "
              f"the runner measurements, on {os.cpu_count()} logical cores; the run could use "
              f"{len(os.sched_getaffinity(0))} of them (CPU affinity).",
              "", machine_line(), "",
              f"Command: `edgeseg bench runner{' ' + ' '.join('--model ' + m for m in args.model) if args.model else ''} "
              f"--threads {args.threads} --repeats {args.repeats} --copies {args.copies}`"]
    path = write_section("runner", "## On-device runner (edgeseg run)\n\n" + "\n".join(lines), args.out)
    print("\n".join(lines))
    print(f"wrote {path}")
    tmp.cleanup()
    return 0
