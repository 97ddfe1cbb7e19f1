"""Compare the aarch64 (QEMU) and x86-64 masks of deploy/arm64-check.sh; optionally record the result.

Exit 0 when every series is present on both sides and the voxel agreement is >= --min-agree.
With --record 1, writes the "arm64" section of docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def series_masks(out: Path) -> dict:
    return {p.parent.name: p for p in sorted(out.glob("*/*/mask.npy"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--min-agree", type=float, default=0.999)
    ap.add_argument("--arm-s", type=float, required=True)
    ap.add_argument("--x86-s", type=float, required=True)
    ap.add_argument("--total-s", type=float, required=True)
    ap.add_argument("--pins", default="")
    ap.add_argument("--python", default="")
    ap.add_argument("--qemu-cpu", default="")
    ap.add_argument("--model", required=True)
    ap.add_argument("--record", type=int, default=0)
    ap.add_argument("--root", default=".")
    a = ap.parse_args(argv)
    work = Path(a.work)
    arm, x86 = series_masks(work / "out-aarch64"), series_masks(work / "out-x86_64")
    if not arm or set(arm) != set(x86):
        print(f"arm64-check: FAIL: series differ (aarch64 {sorted(arm)}, x86-64 {sorted(x86)})", file=sys.stderr)
        return 1
    rows, ok = [], True
    for uid in sorted(arm):
        ma, mx = np.load(arm[uid]), np.load(x86[uid])
        if ma.shape != mx.shape:
            print(f"arm64-check: FAIL: {uid}: shapes {ma.shape} vs {mx.shape}", file=sys.stderr)
            return 1
        agree = float((ma == mx).mean())
        dice = {}
        for k in sorted((set(np.unique(mx).tolist()) | set(np.unique(ma).tolist())) - {0}):
            inter = np.logical_and(ma == k, mx == k).sum()
            denom = (ma == k).sum() + (mx == k).sum()
            dice[int(k)] = float(2 * inter / denom) if denom else 1.0
        rep = {s: json.loads((d / "report.json").read_text()) for s, d in
               (("aarch64", arm[uid].parent), ("x86_64", x86[uid].parent))}
        ok &= agree >= a.min_agree
        rows.append({"series": uid, "shape": list(ma.shape), "voxels": int(ma.size),
                     "differ": int((ma != mx).sum()), "agreement": agree, "dice_per_class": dice,
                     "infer_s": {s: r.get("timings_s", {}).get("infer") for s, r in rep.items()},
                     "provider": {s: r.get("provider") for s, r in rep.items()}})
    summary = {"result": "PASS" if ok else "FAIL", "min_agree": a.min_agree, "model": Path(a.model).name,
               "aarch64_python": a.python, "qemu_cpu": a.qemu_cpu, "wheels": a.pins, "run_s": {"aarch64_qemu": a.arm_s, "x86_64": a.x86_s},
               "total_s": a.total_s, "series": rows}
    print(json.dumps(summary, indent=1))
    if a.record:
        from edgeseg.bench.report import machine_line, write_section

        lines = ["## arm64: the runner on aarch64 (QEMU user-mode) vs x86-64", "",
                 "`bash deploy/arm64-check.sh --record` (from a clean machine: installs qemu-user-static and "
                 "debootstrap, builds an arm64 Debian bookworm root filesystem, takes the aarch64 wheels from the "
                 "package index). Same command on both: `edgeseg run " + Path(a.model).name +
                 " data/sample-mr-brain --provider cpu --also npy`.", "",
                 "| series | voxels | differing | agreement | Dice per class (aarch64 vs x86-64) | infer s aarch64 (emulated) | infer s x86-64 |",
                 "|---|---|---|---|---|---|---|"]
        for r in rows:
            d = ", ".join(f"{k}: {v:.6f}" for k, v in r["dice_per_class"].items())
            lines.append(f"| {r['series'][-12:]}… | {r['voxels']} | {r['differ']} | {r['agreement']:.6f} | {d} | "
                         f"{r['infer_s']['aarch64']:.2f} | {r['infer_s']['x86_64']:.2f} |")
        lines += ["", f"Result: **{summary['result']}** (threshold: agreement >= {a.min_agree}). aarch64 Python "
                  f"{a.python} under qemu-aarch64 -cpu {a.qemu_cpu}; wheels (both sides): {a.pins}. Wall time: whole check {a.total_s:.0f} s "
                  f"(root filesystem, wheels, both runs), `edgeseg run` {a.arm_s:.0f} s emulated on aarch64 vs "
                  f"{a.x86_s:.0f} s native x86-64. Emulated timings say nothing about a real ARM board.", "",
                  machine_line()]
        path = write_section("arm64", "\n".join(lines), Path(a.root) / "docs" / "BENCHMARKS.md")
        print(f"recorded in {path.name}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
