"""Robustness: Dice per class of the released ONNX model on acquisition variants of the test-split slices.

Every variant (see robustness_variants.py) is written as a DICOM MR series and segmented by the runner's
own code path (`edgeseg.runtime.pipeline.run`, the code behind `edgeseg run`: DICOM read, preprocessing
per the model's contract, ONNX Runtime, mask back on the source pixels); Dice and volumes are computed
against the template's labels on the same pixels. Each model's result is kept in
benchmarks/robustness/<label>.json, so an earlier model stays in the table as the baseline after the
release is replaced.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeseg.bench.report import machine_line, write_section
from edgeseg.errors import EdgesegError

RESULTS = Path("benchmarks/robustness")
DEFAULT_MODEL = "export/unet-s2-brain-nano/unet-s2-brain-nano.int8.onnx"


def add_arguments(p) -> None:
    p.add_argument("--model", action="append", default=[], metavar="LABEL=PATH",
                   help=f"ONNX model to measure (repeatable); default: released={DEFAULT_MODEL}")
    p.add_argument("--results", default=str(RESULTS), help="folder of the per-model JSON results (kept across runs)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--normalization", default=None, metavar="NAME",
                   help="ablation: run each model with its contract's normalisation replaced by NAME (a copy of the "
                        "ONNX with that metadata changed; label gets +NAME); e.g. foreground_percentile_component")
    p.add_argument("--out", default="docs/BENCHMARKS.md")
    p.add_argument("--plot", default="docs/robustness.png")
    p.set_defaults(func=run)


def template_display():
    """(t1, labels, test positions): the MNI152 T1 and labels as display-oriented axial (Z, rows, cols)
    stacks, and the axial test-split positions of the default slice configuration."""
    from edgeseg.data import build_slice_sets, load_source
    from edgeseg.data.slices import display_stack

    volumes = load_source("mni152")
    test = build_slice_sets(volumes)["test"].positions
    t1, lab = display_stack(volumes[0], "axial")
    return t1, lab, np.sort(test)


def write_variant(folder: Path, variant, index: int) -> None:
    from edgeseg.bench.robustness_variants import geometry
    from edgeseg.data.make_dicom import series_datasets

    s = variant.stack
    slope = max(float(s.images.max()), 1.0) / 4000.0  # 12 stored bits
    for i, ds in enumerate(series_datasets(s.images, geometry(s), f"edgeseg-robustness-{index}", variant.name,
                                           slope=slope, slice_thickness=s.thickness)):
        ds.save_as(folder / f"MR{i + 1:04d}.dcm", enforce_file_format=True)


def with_normalization(model: str, name: str, folder: Path) -> str:
    """A copy of `model` whose contract names normalisation `name` (the same weights): an ablation of the
    normalisation at inference without retraining."""
    import onnx

    from edgeseg.preprocess import NORMALIZATIONS

    if name not in NORMALIZATIONS:
        raise EdgesegError(f"--normalization {name}: unknown (known: {', '.join(NORMALIZATIONS)})")
    proto = onnx.load(model)
    for entry in proto.metadata_props:
        if entry.key == "edgeseg.normalization":
            entry.value = json.dumps(name)
    path = folder / f"{Path(model).stem}.{name}.onnx"
    onnx.save(proto, str(path))
    return str(path)


def _slice_order(stack) -> np.ndarray:
    """Indices of the stack's slices in the runner's order: along the slice normal (row x column cosines) of
    the written geometry; a coronal display stack grows toward A while its normal points P."""
    from edgeseg.bench.robustness_variants import geometry
    from edgeseg.orientation import normal_positions

    g = geometry(stack)
    return np.argsort(normal_positions(g["orientation"], g["positions"]), kind="stable")


def measure(model: str, variants, threads: int) -> list[dict]:
    """Segment every variant with the runner; -> one row per variant (Dice per class, volumes, status)."""
    from edgeseg.metrics import dice_per_class
    from edgeseg.runtime.pipeline import Options, run
    from edgeseg.results.report import volumes_ml

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, v in enumerate(variants):
            src, out = Path(tmp) / f"in{i}", Path(tmp) / f"out{i}"
            src.mkdir()
            write_variant(src, v, i)
            got, _ = run(model, [src], out, Options(provider="cpu", threads=threads, also=("npy",), overlay=False),
                         show_progress=False)
            ok = [r for r in got if r.status == "ok"]
            row = {"variant": v.name, "kind": v.kind, "slices": int(len(v.stack.images))}
            if not ok:
                rows.append({**row, "status": "failed", "reason": "; ".join(r.reason for r in got)})
                continue
            mask = np.load(Path(ok[0].out) / "mask.npy")
            truth = v.stack.labels[_slice_order(v.stack)]   # the mask's slices are in the runner's order
            rep = ok[0].report
            names = rep["model"]["class_names"]
            dice = dice_per_class(mask, truth, len(names))
            sp, step = rep["series"]["pixel_spacing_mm"], rep["series"]["slice_spacing_mm"]
            rows.append({**row, "status": "ok", "dice": {n: float(d) for n, d in zip(names, dice)},
                         "mean_foreground_dice": float(dice[1:].mean()),
                         "volumes_ml": rep["volumes_ml"], "truth_ml": volumes_ml(truth, sp, step, names),
                         "warnings": rep["warnings"]})
    return rows


def _table(results: dict[str, dict]) -> list[str]:
    labels = list(results)
    head = "| variant | kind | slices | " + " | ".join(
        f"{lab} GM / WM Dice | {lab} mean | {lab} GM / WM mL (truth)" for lab in labels) + " |"
    lines = [head, "|" + "---|" * (3 + 3 * len(labels))]
    by_name = [{r["variant"]: r for r in results[lab]["rows"]} for lab in labels]
    for r0 in results[labels[-1]]["rows"]:
        cells = [r0["variant"], r0["kind"], str(r0["slices"])]
        for rows in by_name:
            r = rows.get(r0["variant"])
            if r is None or r["status"] != "ok":
                cells += ["-", "failed" if r else "not measured", "-"]
                continue
            d, vol, tru = r["dice"], r["volumes_ml"], r["truth_ml"]
            cells += [f"{d['grey_matter']:.3f} / {d['white_matter']:.3f}", f"**{r['mean_foreground_dice']:.3f}**",
                      f"{vol['grey_matter']:.0f} / {vol['white_matter']:.0f} ({tru['grey_matter']:.0f} / {tru['white_matter']:.0f})"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _summary(result: dict) -> str:
    ok = [r for r in result["rows"] if r["status"] == "ok"]
    worst: dict[str, float] = {}
    for r in result["rows"]:
        worst[r["kind"]] = min(worst.get(r["kind"], 1.0), r.get("mean_foreground_dice", 0.0))
    ind = [r["mean_foreground_dice"] for r in ok if r["kind"] == "in-distribution"]
    low = min(worst, key=worst.get)
    return (f"worst variant kind {low} {worst[low]:.3f}; variant kinds with mean foreground Dice >= 0.85: "
            f"{sum(v >= 0.85 for v in worst.values())} of {len(worst)}; in-distribution {ind[0]:.3f}" if ind else "")


def plot(results: dict[str, dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(results)
    names = [r["variant"] for r in results[labels[-1]]["rows"]]
    fig, ax = plt.subplots(figsize=(11, 4.2))
    width = 0.8 / len(labels)
    for k, lab in enumerate(labels):
        rows = {r["variant"]: r for r in results[lab]["rows"]}
        ys = [rows.get(n, {}).get("mean_foreground_dice", 0.0) for n in names]
        ax.bar(np.arange(len(names)) + (k - (len(labels) - 1) / 2) * width, ys, width, label=lab)
    ax.axhline(0.85, color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean foreground Dice (GM, WM)")
    ax.set_title("edgeseg run on acquisition variants of the MNI152 test-split slices")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args) -> int:
    from edgeseg.bench.robustness_variants import build_variants
    from edgeseg.contract import read_contract

    models = dict(m.split("=", 1) for m in args.model) if args.model else {"released": DEFAULT_MODEL}
    folder = Path(args.results)
    folder.mkdir(parents=True, exist_ok=True)
    t1, lab, test = template_display()
    variants = build_variants(t1, lab, test)
    commands = {label: f"edgeseg bench robustness --model {label}={path}" for label, path in models.items()}
    scratch = tempfile.TemporaryDirectory()
    if args.normalization:
        commands = {f"{label}+{args.normalization}": f"{cmd} --normalization {args.normalization}"
                    for label, cmd in commands.items()}
        models = {f"{label}+{args.normalization}": with_normalization(path, args.normalization, Path(scratch.name))
                  for label, path in models.items()}
    for label, path in models.items():
        started, load = time.perf_counter(), os.getloadavg()[0]
        c = read_contract(path)
        rows = measure(path, variants, args.threads)
        result = {"label": label, "model": Path(path).name, "recipe_hash": c.recipe_hash,
                  "normalization": c.normalization, "fit": c.fit, "precision": c.precision,
                  "machine": machine_line(), "load": [round(load, 2), round(os.getloadavg()[0], 2)],
                  "seconds": round(time.perf_counter() - started, 1),
                  "command": commands[label], "rows": rows}
        (folder / f"{label}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"{label}: {_summary(result)} ({result['seconds']} s)")
    scratch.cleanup()
    results = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}  # by label: name them in order
    plot(results, args.plot)
    lines = [f"Acquisition variants of the {len(test)} axial test-split slices of the MNI152 T1 (positions "
             f"{test.min()}-{test.max()}, never trained on), each written as a DICOM MR series and segmented by "
             "`edgeseg.runtime.pipeline.run` (the code of `edgeseg run`, CPU provider); Dice per class pooled over "
             "the series' pixels against the template's labels on the same pixels; volumes from the runner's report "
             "vs the labels' (truth). The test split is two 8-slice blocks, not one slab: the sagittal / coronal "
             "3-D variants re-slice each block on its own (8-row sagittal images, one instance per sagittal "
             "position through the head, 1 mm, or 1.0 x 1.2 x 1.2 mm after linear resampling), which the runner "
             "reformats into axial slices and maps back onto the sagittal instances (runtime/reformat.py).", ""]
    lines += _table(results) + [""]
    for lab, res in results.items():
        lines.append(f"- **{lab}** (`{res['model']}`, {res['precision']}, normalisation `{res['normalization']}`, "
                     f"fit `{res['fit']}`, training recipe {res['recipe_hash']}): {_summary(res)}. "
                     f"Command: `{res.get('command', 'edgeseg bench robustness')}`. {res['machine']}"
                     + (f" Load (1 min) {res['load'][0]} at start, {res['load'][1]} at end; {res['seconds']} s."
                        if "load" in res else ""))
    lines += ["", f"![robustness]({Path(args.plot).name})", "",
              f"Results are kept in `{args.results}/`, one JSON per model label; a rerun replaces only the labels it "
              "measures, so an earlier release stays in the table as the baseline."]
    path = write_section("robustness", "## Robustness to acquisition (edgeseg bench robustness)\n\n" + "\n".join(lines),
                         args.out)
    print(f"wrote {path}")
    return 0
