"""Compression from the papers: fixed-point QAT (float scales and Perone's Q-format), TernaryNet vs binary vs FP32 from scratch, Tucker-2.

Fixed point: weight bits x activation bits, each a short QAT fine-tune from the FP32 checkpoint
(trained from the default recipe when missing), beside an FP32 fine-tune of the same length (Xu's
control); Perone's variant (power-of-two scales, one Q-format per layer) at the grid points of his
paper. TernaryNet: ternary / binary / FP32 trained from scratch with the protocol of
recipes/compress-ternarynet.toml over several seeds. Tucker: per DF the fine-tune budget of
recipes/compress-tucker.toml, a from-scratch control, ORT CPU and simulated Nano latency.
Each cell's result is kept under --out/cells/ with its settings and reused when they match
(--fresh recomputes); the report states the summed compute time of all cells. `--quick` is a CI-size run.
`--only` runs some parts; such a run writes its own section (compression-<parts>) and no plot.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
import time
from pathlib import Path

from edgeseg.bench import compression_ternary as tern

PARTS = ("ternary", "tucker", "fixedpoint")


DEFAULT_CHECKPOINT = "runs/unet-s2-brain/model.pt"
# a run with another recipe names it in its section and command (the default tables stay)
RECIPE_DEFAULTS = {"ternary_recipe": "recipes/compress-ternarynet.toml", "tucker_recipe": "recipes/compress-tucker.toml"}


def base_checkpoint(args) -> str:
    """The FP32 checkpoint: --checkpoint, or for --base-width N with the default one runs/<recipe>-wN/model.pt
    (a wider model never overwrites the default width's checkpoint)."""
    if args.base_width < 0:
        from edgeseg.errors import EdgesegError

        raise EdgesegError(f"--base-width {args.base_width}: must be a positive backbone width (0 = the recipe's)")
    if args.base_width and args.checkpoint == DEFAULT_CHECKPOINT:
        return f"runs/{Path(args.train_recipe).stem}-w{args.base_width}/model.pt"
    return args.checkpoint


def section_name(args) -> str:
    """compression for the whole default run; a partial run (--only) names its parts; a run off the recipes'
    defaults (--base-width, --ternary-epochs/-width/-scale) gets a suffix per setting, so an ablation never
    overwrites the default tables. --quick keeps the plain name (its docs file is a scratch one)."""
    name = "compression" if set(args.only) == set(PARTS) else "compression-" + "-".join(p for p in PARTS if p in args.only)
    name += f"-w{args.base_width}" if args.base_width else ""
    if "ternary" in args.only and not args.quick:
        for flag, value in (("e", args.ternary_epochs), ("tw", args.ternary_width), ("s", args.ternary_scale)):
            name += f"-{flag}{value}" if value is not None else ""
        default = Path(RECIPE_DEFAULTS["ternary_recipe"]).stem
        arms = _ternary_arms(args)
        name += "-arms-" + "-".join(arms) if len(arms) < len(tern.ARMS) else ""
        stem = Path(args.ternary_recipe).stem
        if stem != default:  # e.g. compress-ternarynet-float-last -> -float-last
            name += "-" + (stem[len(default) + 1:] if stem.startswith(default + "-") else stem)
    return name


def _ternary_arms(args) -> list[str]:
    """The TernaryNet arms to run, in the table's order (all of them unless --ternary-arms names some)."""
    chosen = getattr(args, "ternary_arms", None)
    return [a for a, _ in tern.ARMS if not chosen or a in chosen]


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    p.add_argument("--train-recipe", default="recipes/unet-s2-brain.toml", help="trains --checkpoint when it is missing")
    p.add_argument("--base-width", type=int, default=0, help="the FP32 model at this backbone width (trained from "
                   "--train-recipe into runs/<recipe>-w<N>/model.pt unless --checkpoint names one); the section and "
                   "results get a -w<N> suffix, so the default width's tables stay")
    p.add_argument("--weight-bits", nargs="*", type=int, default=[2, 4, 6, 8])
    p.add_argument("--act-bits", nargs="*", type=int, default=[4, 6, 8])
    p.add_argument("--perone", nargs="*", default=["8:8", "4:6", "2:4"], help="W:A points of the Q-format variant")
    p.add_argument("--qat-epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3, help="QAT fine-tune learning rate")
    p.add_argument("--ternary-recipe", default=RECIPE_DEFAULTS["ternary_recipe"])
    p.add_argument("--ternary-epochs", type=int, default=None, help="override the recipe's [scratch] epochs")
    p.add_argument("--ternary-width", type=int, default=None, help="override the recipe's [scratch] width")
    p.add_argument("--ternary-scale", type=int, default=None, help="override the recipe's [scratch] scale")
    p.add_argument("--ternary-arms", nargs="+", choices=[a for a, _ in tern.ARMS], default=None,
                   help="run only these arms (e.g. one per core; their cells merge into one run); the section gets an "
                        "-arms-<names> suffix so a partial table never replaces a whole one")
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--tucker-recipe", default=RECIPE_DEFAULTS["tucker_recipe"])
    p.add_argument("--tucker-df", nargs="*", type=float, default=[0.7, 0.5, 0.3, 0.2])
    p.add_argument("--tucker-epochs", type=int, default=None, help="override the recipe's fine-tune epochs")
    p.add_argument("--tucker-variants", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra rows per DF with one [scheme] key changed (e.g. rank_multiple=1), no control")
    p.add_argument("--no-control", action="store_true", help="skip the from-scratch Tucker controls")
    p.add_argument("--tucker-seeds", nargs="+", type=int, default=[0],
                   help="the Tucker part's [finetune] seed (fine-tune, control and the budget-matched FP32 fine-tune), "
                        "one run per seed; mean +- sd over them (seed 0 keeps the unseeded cell names)")
    p.add_argument("--tucker-widths", nargs="*", type=int, default=[],
                   help="latency only: untrained backbones of these widths, whole and Tucker-decomposed per DF")
    p.add_argument("--seed", type=int, default=0, help="QAT fine-tune seed")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every training run")
    p.add_argument("--repeats", type=int, default=30, help="timed ONNX Runtime runs per model")
    p.add_argument("--quick", action="store_true", help="CI size: one setting per section, 1 epoch, width 4")
    p.add_argument("--fresh", action="store_true", help="recompute every cell")
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS),
                   help="run only these parts: a partial run writes the section compression-<parts>, no plot")
    p.add_argument("--out", default="runs/bench-compression")
    p.add_argument("--docs", default="docs/BENCHMARKS.md")
    p.add_argument("--plot", default="docs/compression.png")


def quick(args) -> None:
    args.weight_bits, args.act_bits, args.perone, args.qat_epochs = [4], [8], ["4:6"], 1
    args.ternary_epochs, args.ternary_width, args.seeds = 1, 4, [0]
    args.tucker_df, args.tucker_epochs, args.repeats = [0.5], 1, 2


class _NoScheme:
    """FP32 fine-tune control: nothing to anneal."""

    def label(self):
        return "FP32"

    def on_epoch(self, model, epoch, epochs):
        pass


class Cells:
    """Results on disk keyed by name, reused while their settings match."""

    def __init__(self, folder: Path, fresh: bool):
        self.folder, self.fresh, self.seconds, self.loads = folder / "cells", fresh, 0.0, []
        self.folder.mkdir(parents=True, exist_ok=True)

    def get(self, name: str, settings: dict, fn) -> dict:
        path = self.folder / f"{name}.json"
        key = json.loads(json.dumps(settings, default=str))
        if not self.fresh and path.is_file():
            stored = json.loads(path.read_text())
            if stored.get("settings") == key:
                self.seconds += stored["seconds"]
                self.loads.append(stored.get("load", "?"))
                return stored["result"]
        t = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t
        self.seconds += seconds
        self.loads.append(_load())
        path.write_text(json.dumps({"settings": key, "seconds": seconds, "result": result, "load": _load()}, indent=1, default=str))
        return result


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def fp32_finetune(fp32, base: dict, sets, scale: int, cfg, group: str) -> dict:
    """The FP32 model fine-tuned with `cfg` (a FinetuneConfig) and nothing compressed: the control that has had the same
    extra training as a compressed row (Xu's control for fixed point; the budget-matched baseline for Tucker)."""
    from edgeseg.compress.finetune import finetune
    from edgeseg.train.predict import evaluate_model

    model = copy.deepcopy(fp32)
    ft = finetune(model, _NoScheme(), sets, scale, cfg, True, f"FP32 control, seed {cfg.seed}")
    return {**base, "setting": f"fine-tuned {cfg.epochs} ep", "group": group, "seed": cfg.seed, "seconds": ft["seconds"],
            "dice": evaluate_model(model, sets["test"], scale)["mean_foreground_dice"]}


def _qat_recipe(scheme: dict, args):
    from edgeseg.compress.recipe import CompressRecipe, ExportConfig, FinetuneConfig, SourceConfig

    return CompressRecipe(scheme=scheme, source=SourceConfig(checkpoint=args.checkpoint, train_recipe=args.train_recipe,
                                                                     width=args.base_width),
                          finetune=FinetuneConfig(epochs=args.qat_epochs, lr=args.lr, seed=args.seed, threads=args.threads),
                          export=ExportConfig(onnx=True, int4=True))


def _source_recipe(path: str, args):
    from edgeseg.compress.recipe import load_compress_recipe

    r = load_compress_recipe(path)
    return dataclasses.replace(r, source=dataclasses.replace(r.source, checkpoint=args.checkpoint, train_recipe=args.train_recipe,
                                                                 width=args.base_width),
                               finetune=dataclasses.replace(r.finetune, threads=args.threads))


def _qat_row(method: str, setting: str, m: dict, group: str) -> dict:
    files = m.get("onnx", {}).get("files", {})
    return {"method": method, "setting": setting, "group": group, "dice": m["test_dice"], "ptq_dice": m["post_training_test_dice"],
            "kb": m["storage"]["kb"], "params": m["parameters"], "macs": m["macs"],
            "ort": {k: {"dice": f["ort_test_dice"], "diff": f["abs_diff"], "kb": f["kb"]} for k, f in files.items()},
            "seconds": m.get("finetune", {}).get("seconds", 0.0)}


def run(args) -> int:
    import torch

    from edgeseg.bench import compression_tucker as tuck
    from edgeseg.bench.compression_report import markdown, plot
    from edgeseg.bench.report import write_section
    from edgeseg.compress.memory import fp32_storage
    from edgeseg.compress.pipeline import compress, export_float_int8, load_source
    from edgeseg.compress.pipeline import input_shape
    from edgeseg.compress.recipe import FinetuneConfig
    from edgeseg.export.pipeline import load_data
    from edgeseg.export.to_onnx import build_contract
    from edgeseg.models.complexity import count_macs, count_parameters
    from edgeseg.train.predict import evaluate_model

    if args.quick:
        quick(args)
    args.checkpoint = base_checkpoint(args)
    if "tucker" in args.only:
        tuck.check_grid(_source_recipe(args.tucker_recipe, args), args)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    out = Path(args.out)
    cells = Cells(out, args.fresh)
    source = load_source(_qat_recipe({"name": "fixedpoint"}, args))
    fp32, trecipe, ckpt = source
    data = load_data(trecipe)
    sets, identity, spacing = data
    scale, shape = trecipe.model.scale, input_shape(trecipe)
    base = {"method": "FP32", "setting": "trained", "group": "fp32", "dice": evaluate_model(fp32, sets["test"], scale)["mean_foreground_dice"],
            "kb": fp32_storage(fp32)["kb"], "params": count_parameters(fp32), "macs": count_macs(fp32, shape)}
    contract = build_contract(trecipe, ckpt["class_names"], ckpt.get("data_identity") or identity, spacing)
    original = export_float_int8(fp32, contract, sets, scale, out / "fp32", 13)
    base["onnx_kb"] = original["fp32"].stat().st_size / 1024
    common = {"checkpoint": args.checkpoint, "fp32_dice": base["dice"], "threads": args.threads}

    control = functools.partial(fp32_finetune, fp32, base, sets, scale)  # (cfg, group) -> the FP32 fine-tune row

    # priority order of issue #18: TernaryNet, Tucker, then the fixed-point grid (each cell is cached as it finishes)
    tbase = _source_recipe(args.ternary_recipe, args)
    scratch, arms = [], _ternary_arms(args)
    for seed in args.seeds if "ternary" in args.only else ():  # seed by seed, so an interrupted run leaves whole seeds in the cache
        for arm in arms:
            r = tern.arm_recipe(tbase, arm, seed, args.ternary_epochs, args.ternary_width, args.ternary_scale)
            scratch.append(cells.get(f"scratch-{arm}-seed{seed}", {**common, **r.to_dict()},
                                     lambda: tern.run_arm(tbase, arm, seed, args, data, source, out)))

    kbase = _source_recipe(args.tucker_recipe, args)
    tucker, controls, matched = [], [], []
    if "tucker" in args.only:
        tucker, controls, matched = tuck.run_seeds(kbase, args, cells, common, data, source, out,
                                                   lambda cfg: control(cfg, "tucker-fp32-ft"))
    rows = [base]
    if "fixedpoint" in args.only:
        cfg = FinetuneConfig(epochs=args.qat_epochs, lr=args.lr, seed=args.seed, threads=args.threads)
        rows.append(cells.get("fp32-control", {**common, "epochs": args.qat_epochs, "lr": args.lr, "seed": args.seed},
                              lambda: control(cfg, "fp32-ft")))
    grid = [("fixedpoint", wb, ab) for wb in args.weight_bits for ab in args.act_bits]
    grid += [("perone", int(p.split(":")[0]), int(p.split(":")[1])) for p in args.perone]
    grid = grid if "fixedpoint" in args.only else []
    for name, wb, ab in grid:
        recipe = _qat_recipe({"name": name, "weight_bits": wb, "act_bits": ab}, args)
        folder = out / f"{name}-w{wb}a{ab}"
        method = "fixed point" if name == "fixedpoint" else "fixed point (Perone Q-format)"
        rows.append(cells.get(f"{name}-w{wb}a{ab}", {**common, **recipe.to_dict()}, lambda: _qat_row(
            method, f"W{wb}A{ab}", compress(recipe, data=data, source=source, out_dir=folder), name)))

    paths = {"original": original["fp32"], "original int8": original["int8"]}
    for t in tucker:  # one export per row key: every seed's model has the same convs, and a float conv's time is the same
        key = t.get("key", f"DF {t['df']:g}")
        paths.setdefault(key, t["fp32_onnx"])
        paths.setdefault(f"{key} int8", t["int8_onnx"])
    t0 = time.perf_counter()
    x = sets["test"].lowres(scale)[:1, None].copy()
    lat = tuck.latency(paths, x, args.repeats)
    wide = tuck.width_latency(trecipe, ckpt, data, dict(kbase.scheme), args.tucker_widths, args.tucker_df, x, args.repeats,
                              out / "tucker-widths") if "tucker" in args.only else []
    result = {"rows": rows, "scratch": scratch, "scratch_summary": tern.summarise(scratch), "tucker": tucker,
              "controls": controls, "tucker_fp32_ft": matched, "latency": lat, "tucker_widths": wide, "tucker_scheme": dict(kbase.scheme), "latency_seconds": time.perf_counter() - t0,
              "cell_seconds": cells.seconds, "cell_loads": cells.loads, "wall_seconds": time.perf_counter() - started, "seed": args.seed,
              "fp32_checkpoint": args.checkpoint, "fp32_train_seed": trecipe.train.seed, "threads": args.threads,
              "scratch_protocol": dataclasses.asdict(tbase.scratch),
              "tucker_finetune": dataclasses.asdict(kbase.finetune), "load": _load()}
    section = section_name(args)
    whole = section == "compression"  # results.json and the plot belong to the default run
    (out / ("results.json" if whole else f"results-{section}.json")).write_text(json.dumps(result, indent=2, default=str))
    md = markdown(result, args)
    write_section(section, md, args.docs)
    if whole:
        plot(result, args.plot)
    print(md)
    return 0
