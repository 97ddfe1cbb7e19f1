"""On-device runner: per-stage time, slices/s, inference share, start-up and peak RSS vs PyTorch full-res.

Each ONNX model runs `edgeseg.runtime` in its own process (so start-up and peak RSS are the runner's
alone) on the bundled sample series, `--repeats` times in each mode (sequential, overlapped); the
median repeat of each is reported. The reference is what a user would otherwise run: the same backbone in PyTorch on full-resolution slices, without
the SR head, timed in the same bench run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from edgeseg.bench.report import machine_line, write_section

STAGES = ("read", "preprocess", "infer", "postprocess", "write")

_CHILD = r"""
import json, resource, sys, tempfile, time
t0 = time.perf_counter()
from edgeseg.runtime.pipeline import Options, run
from edgeseg.runtime.session import Segmenter
t_import = time.perf_counter() - t0
Segmenter(sys.argv[1], "cpu", int(sys.argv[3]))
t_start = time.perf_counter() - t0
t0 = time.perf_counter()
from edgeseg.runtime.seg_writer import _highdicom, warm_up
_highdicom(); warm_up()
t_seg = time.perf_counter() - t0
reports = {"sequential": [], "overlapped": []}
for _ in range(int(sys.argv[4])):
    for mode in reports:  # interleaved, so that machine noise reaches both modes alike
        with tempfile.TemporaryDirectory() as out:
            rows, info = run(sys.argv[1], [sys.argv[2]], out, Options(provider="cpu", threads=int(sys.argv[3]), batch=8,
                             overlap=mode == "overlapped"), show_progress=False)
        ok = [r for r in rows if r.status == "ok"]
        assert ok, [r.reason for r in rows]
        reports[mode].append(ok[0].report)
median = {mode: sorted(reps, key=lambda r: r["total_s"])[len(reps) // 2] for mode, reps in reports.items()}
print(json.dumps({"import_s": t_import, "startup_s": t_start, "seg_setup_s": t_seg, "reports": median, "info": info,
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


def run(args) -> int:
    tmp = tempfile.TemporaryDirectory()
    models = dict(m.split("=", 1) for m in args.model) if args.model else _released()
    note = "released models"
    if not models:
        models, note = stand_in_models(Path(tmp.name), args.series, args.width), \
            f"random-weight stand-ins (unet width {args.width}, static INT8 QDQ): no released model under export/ yet"
    load_before = os.getloadavg()
    results = {label: _child(_CHILD, path, args.series, args.threads, args.repeats) for label, path in models.items()}
    load_after = os.getloadavg()
    first = next(iter(results.values()))["reports"]["sequential"]
    n = first["series"]["slices"]
    ref = _child(_TORCH, next(iter(models.values())), args.threads, n, args.repeats, args.width)
    ref_sps = n / ref["infer_s"]
    lines = [f"Sample series `{args.series}`: {n} slices {first['series']['rows']}x{first['series']['columns']}, "
             f"{args.threads} inference thread(s), CPU provider, the median of {args.repeats} repeats (by total time) "
             f"per mode, the two modes interleaved; models: {note}.", "",
             "*sequential*: every stage on one thread, one after the other (`edgeseg run --sequential`). "
             "*overlapped* (the default): the DICOM SEG's header, which needs the source headers but not the mask, "
             "is built and encoded on a second Python thread while onnxruntime infers (it releases the GIL); "
             "its time is shown apart and is not in the total, any wait for it is in *write*.", "",
             "| model | mode | provider | " + " | ".join(f"{s} ms/slice" for s in STAGES) +
             " | SEG header on 2nd thread ms/slice | slices/s end-to-end | inference share | "
             "start-up s (import + session) | peak RSS MB | x PyTorch ref |",
             "|" + "---|" * (len(STAGES) + 9)]
    verdicts = []
    for label, r in results.items():
        for mode, rep in r["reports"].items():
            per = [1000 * rep["timings_s"][s] / n for s in STAGES]
            sps, share = rep["slices_per_s"], rep["inference_share"]
            side = rep.get("overlapped_s", {}).get("seg_header")
            lines.append(f"| {label} (`{Path(models[label]).name}`) | {mode} | "
                         f"{rep['provider'].replace('ExecutionProvider', '')} | "
                         + " | ".join(f"{v:.2f}" for v in per) + f" | {'' if side is None else f'{1000 * side / n:.2f}'} | "
                         f"{sps:.1f} | {100 * share:.0f} % | "
                         f"{r['startup_s']:.2f} ({r['import_s']:.2f} + {r['startup_s'] - r['import_s']:.2f}) | "
                         f"{r['peak_rss_mb']:.0f} | {sps / ref_sps:.2f} |")
            other = 1000 * (rep["total_s"] - rep["timings_s"]["infer"]) / n
            verdicts.append(f"{label} {mode}: {100 * share:.1f} % " + (
                "(met)" if share >= 0.70 else
                f"(not met: {100 * (0.70 - share):.1f} points short; the other stages take {other:.2f} ms/slice, "
                f"<= {1000 * rep['timings_s']['infer'] * 0.3 / 0.7 / n:.2f} would meet it)"))
        seq, ovl = r["reports"]["sequential"], r["reports"]["overlapped"]
        verdicts[-1] += (f"; overlapped vs sequential for {label}: end-to-end x{ovl['slices_per_s'] / seq['slices_per_s']:.2f}, "
                         f"inference itself x{seq['timings_s']['infer'] / ovl['timings_s']['infer']:.2f} "
                         "(the second thread competes for the core pair)")
    lines += ["", f"PyTorch reference (same backbone, full resolution {first['model']['hr_size'][0]}x"
              f"{first['model']['hr_size'][1]}, no SR head, inference + argmax only): {1000 * ref['infer_s'] / n:.2f} ms/slice, "
              f"{ref_sps:.1f} slices/s. The runner's figures include reading, decoding and writing DICOM SEG, report "
              "and overlay; the SEG writer's one-time set-up (importing highdicom and its tables of the standard, "
              f"{next(iter(results.values()))['seg_setup_s']:.2f} s) is not in any series.",
              "", "Issue 6 target: inference >= 70 % of the end-to-end time per series. " + "; ".join(verdicts) + ".",
              "", f"Machine load (os.getloadavg, 1/5/15 min): "
              f"{'/'.join(f'{v:.2f}' for v in load_before)} before, {'/'.join(f'{v:.2f}' for v in load_after)} after "
              f"the runner measurements, on {os.cpu_count()} logical cores. Stage times are per series, end-to-end, "
              "writing included (no pipelining across series).",
              "", machine_line(), "",
              f"Command: `edgeseg bench runner{' ' + ' '.join('--model ' + m for m in args.model) if args.model else ''} "
              f"--threads {args.threads} --repeats {args.repeats}`"]
    path = write_section("runner", "## On-device runner (edgeseg run)\n\n" + "\n".join(lines), args.out)
    print("\n".join(lines))
    print(f"wrote {path}")
    tmp.cleanup()
    return 0
