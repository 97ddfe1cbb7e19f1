"""SR-head benchmark cells on the acquisition variants of `edgeseg bench robustness`.

A cell's exported FP32 ONNX (the simplified opset-13 file of srhead_onnx's export folder) segments every
variant of `robustness_variants.build_variants` through `robustness.measure`: each variant written as a
DICOM MR series, run by the runner's code (the model's contract, mask back onto the source pixels), Dice
pooled over the series against the recipe's own labels (three classes, or a binary target such as
`mni152:ventricles`). The variants are built from the MNI152 template in the recipe's slice plane on its own
test-split positions (the 3-D reformats into other planes from axial recipes only). Results are cached
beside the export.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from edgeseg.bench.srhead_onnx import TARGET


def unsupported(recipe) -> str:
    """'' when the recipe's test split can be measured on the robustness variants, else why not."""
    if recipe.data.source.split(":")[0] != "mni152":
        return f"the robustness variants are built from the MNI152 template; this recipe's source is {recipe.data.source}"
    return ""


def build(recipe, test_positions):
    """The robustness bench's variants of the recipe's source (image and labels of its target), in its slice
    plane, on these test positions."""
    import numpy as np

    from edgeseg.bench.robustness_variants import build_variants
    from edgeseg.data import load_source
    from edgeseg.data.slices import display_stack

    axis = recipe.data.slices.axis
    image, labels = display_stack(load_source(recipe.data.source)[0], axis)
    return build_variants(image, labels, np.sort(np.asarray(test_positions)), plane=axis)


def measure_cell(cell: str | Path, variants, threads: int = 1) -> dict:
    """{variant name: mean foreground Dice (None where the runner refused it)} of the cell's FP32 export."""
    from edgeseg.bench.robustness import measure

    model = Path(cell) / f"export-{TARGET}" / "model.fp32-sim.onnx"
    done = Path(cell) / "robustness.json"
    if done.is_file() and done.stat().st_mtime >= model.stat().st_mtime:
        return json.loads(done.read_text())
    result = {r["variant"]: r.get("mean_foreground_dice") for r in measure(str(model), variants, threads)}
    done.write_text(json.dumps(result, indent=2) + "\n")
    return result


def markdown(cells) -> list[str]:
    """Table: one row per acquisition variant, one column per measured cell; then c vs lr over the variants."""
    measured = [c for c in cells if c.get("robustness")]
    if not measured:
        return []
    from edgeseg.bench.srhead_variants import VARIANTS

    order = list(VARIANTS)
    cols = sorted(measured, key=lambda c: (c["model"], c["scale"], c["seed"], order.index(c["variant"])))
    names = list(cols[0]["robustness"])
    head = " | ".join(f"{c['model']} x{c['scale']} {c['variant']} (seed {c['seed']})" for c in cols)
    lines = ["", "### On the acquisition variants of `edgeseg bench robustness` (FP32 ONNX through the runner)", "",
             f"| variant | {head} |", "|---|" + "---:|" * len(cols)]
    fmt = lambda v: "failed" if v is None else f"{v:.4f}"  # noqa: E731
    for name in names:
        lines.append(f"| {name} | " + " | ".join(fmt(c["robustness"].get(name)) for c in cols) + " |")
    for label, pick in (("mean over variants", statistics.fmean), ("worst variant", min)):
        vals = [[v for v in c["robustness"].values() if v is not None] for c in cols]
        lines.append(f"| **{label}** | " + " | ".join(f"**{pick(v):.4f}**" if v else "" for v in vals) + " |")
    lines.append("")
    by = {(c["model"], c["scale"], c["seed"], c["variant"]): c["robustness"] for c in cols}
    for (m, s, seed, key), rob in sorted(by.items()):
        lr = by.get((m, s, seed, "lr"))
        if key == "lr" or not lr:
            continue
        gains = [rob[n] / lr[n] - 1 for n in names if rob.get(n) and lr.get(n)]
        if gains:
            lines.append(f"- {m} x{s} seed {seed}, {key} vs lr over the {len(gains)} variants: mean "
                         f"{100 * statistics.fmean(gains):+.1f} %, range {100 * min(gains):+.1f} … {100 * max(gains):+.1f} %; "
                         f">= +5.5 % on {sum(g >= 0.055 for g in gains)} of {len(gains)}.")
    return lines
