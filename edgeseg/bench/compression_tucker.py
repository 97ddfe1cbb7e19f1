"""Tucker-2 per rank factor: post-training, fine-tuned with the recipe's budget, the same decomposed
architecture trained from scratch with the same number of epochs, the FP32 model fine-tuned with the same
budget (no decomposition), ORT CPU latency and simulated Nano latency; per --tucker-seeds seed.

The fine-tune budget and lr come from recipes/compress-tucker.toml ([finetune]); only DF (and, for the
--tucker-variants rows, one [scheme] key) changes per row, and the [finetune] seed per seed.
The control starts from PyTorch's default init of the decomposed layers (Scheme.scratch_init) and runs
the [scratch] protocol (Adam + per-epoch decay) for the same epochs and seed.
"""
from __future__ import annotations

import dataclasses

from edgeseg.errors import EdgesegError


def grid(args) -> list[tuple[float, dict]]:
    """(DF, scheme change) per row: every DF with the recipe's scheme, then once per --tucker-variants KEY=VALUE."""
    import json

    changes = [{}]
    for item in args.tucker_variants:
        key, eq, value = item.partition("=")
        if not key or not eq:
            raise EdgesegError(f"--tucker-variants '{item}': expected KEY=VALUE, a [scheme] key of the Tucker recipe")
        try:
            changes.append({key: json.loads(value)})
        except ValueError:
            changes.append({key: value})
    return [(df, c) for df in args.tucker_df for c in changes]


def check_grid(base, args) -> None:
    """Every row of the grid makes a valid recipe, checked before anything is trained (one line naming the row)."""
    for df, change in grid(args):
        try:
            df_recipe(base, df, args.tucker_epochs, control=False, change=change)
        except (EdgesegError, TypeError, ValueError) as exc:
            raise EdgesegError(f"--tucker-variants {row_key(df, change)}: {exc}") from None


def seeded(name: str, seed: int) -> str:
    """Seed 0 keeps the name the cells had before seeds existed."""
    return f"{name}-seed{seed}" if seed else name


def cell_name(df: float, change: dict, seed: int = 0) -> str:
    return seeded(f"tucker-df{df:g}" + "".join(f"-{k}{v}" for k, v in change.items()), seed)


def row_key(df: float, change: dict) -> str:
    """DF alone for the recipe's own scheme, else with the changed key."""
    return f"DF {df:g}" + "".join(f", {k}={v}" for k, v in change.items())


def finetune_config(base, epochs: int | None, seed: int = 0):
    """The recipe's [finetune] with the bench's epochs override and this seed: one budget for every row of a seed."""
    return dataclasses.replace(base.finetune, seed=seed, **({} if epochs is None else {"epochs": epochs}))


def df_recipe(base, df: float, epochs: int | None, control: bool, change: dict | None = None, seed: int = 0):
    ft = finetune_config(base, epochs, seed)
    scratch = dataclasses.replace(base.scratch, enabled=control, epochs=max(1, ft.epochs), width=0, scale=0)
    return dataclasses.replace(base, scheme=dict(base.scheme, df=df, **(change or {})), finetune=ft, scratch=scratch,
                               export=dataclasses.replace(base.export, onnx=not control))


def run_seeds(base, args, cells, common: dict, data, source, out, fp32_finetune) -> tuple[list, list, list]:
    """Seed by seed (an interrupted run leaves whole seeds in the cache): every grid row, its control, and the FP32
    model fine-tuned with the same [finetune] (`fp32_finetune(cfg)`, the budget-matched baseline).
    -> (tucker rows, controls, budget-matched FP32 rows), each tagged with its seed."""
    tucker, controls, matched = [], [], []
    for seed in args.tucker_seeds:
        for df, change in grid(args):
            r = df_recipe(base, df, args.tucker_epochs, control=False, change=change, seed=seed)
            row = cells.get(cell_name(df, change, seed), {**common, **r.to_dict()},
                            lambda: run_df(base, df, args, data, source, out, change, seed))
            tucker.append({**row, "seed": seed})
            if not args.no_control and not change:
                r = df_recipe(base, df, args.tucker_epochs, control=True, seed=seed)
                row = cells.get(f"{cell_name(df, {}, seed)}-scratch", {**common, **r.to_dict()},
                                lambda: run_control(base, df, args, data, source, out, seed))
                controls.append({**row, "seed": seed})
        cfg = finetune_config(base, args.tucker_epochs, seed)
        row = cells.get(seeded("tucker-fp32-ft", seed), {**common, "finetune": dataclasses.asdict(cfg)}, lambda: fp32_finetune(cfg))
        matched.append({**row, "seed": seed})
    return tucker, controls, matched


def run_df(base, df: float, args, data, source, out, change: dict | None = None, seed: int = 0) -> dict:
    from edgeseg.compress.pipeline import compress

    change = change or {}
    recipe = df_recipe(base, df, args.tucker_epochs, control=False, change=change, seed=seed)
    folder = out / cell_name(df, change, seed)
    m = compress(recipe, data=data, source=source, out_dir=folder)
    files = m["onnx"]["files"]
    return {"df": df, "change": change, "key": row_key(df, change), "params": m["parameters"], "macs": m["macs"],
            "decomposed": sum(1 for r in m["layers"] if r.get("decomposed")), "ptq_dice": m["post_training_test_dice"],
            "dice": m["test_dice"], "epochs": recipe.finetune.epochs, "lr": recipe.finetune.lr,
            "seconds": m.get("finetune", {}).get("seconds", 0.0), "int8_dice": files["int8"]["ort_test_dice"],
            "int8_diff": files["int8"]["abs_diff"], "fp32_onnx": str(folder / "model.fp32.onnx"),
            "int8_onnx": str(folder / "model.int8.onnx")}


def run_control(base, df: float, args, data, source, out, seed: int = 0) -> dict:
    from edgeseg.compress.pipeline import compress

    recipe = df_recipe(base, df, args.tucker_epochs, control=True, seed=seed)
    m = compress(recipe, data=data, source=source, out_dir=out / f"{cell_name(df, {}, seed)}-scratch")
    return {"df": df, "key": row_key(df, {}), "params": m["parameters"], "dice": m["test_dice"],
            "epochs": recipe.scratch.epochs, "lr": recipe.scratch.lr, "seconds": m["scratch"]["seconds"]}


def summarise(result: dict) -> dict:
    """Per row key over its seeds (mean, sample sd): fine-tuned Dice, points vs the FP32 base, points vs the
    budget-matched FP32 of the same seed (paired), the control's Dice and fine-tuned minus control (paired);
    -> {"rows": {key: ...}, "matched": (mean, sd) of the budget-matched FP32 or None, "seeds": [...]}."""
    from edgeseg.bench.report import mean_sd

    fp = result["rows"][0]["dice"]
    matched = {m["seed"]: m["dice"] for m in result.get("tucker_fp32_ft", [])}
    ctrl = {(c.get("key", c["df"]), c.get("seed", 0)): c["dice"] for c in result["controls"]}
    out: dict = {}
    for t in result["tucker"]:
        out.setdefault(t.get("key", f"DF {t['df']:g}"), []).append(t)
    rows = {}
    for key, ts in out.items():
        seeds = [t.get("seed", 0) for t in ts]
        paired = [100 * (t["dice"] - matched[s]) for t, s in zip(ts, seeds) if s in matched]
        cs = {s: ctrl[(key, s)] for s in seeds if (key, s) in ctrl}
        gain = [100 * (t["dice"] - cs[s]) for t, s in zip(ts, seeds) if s in cs]
        rows[key] = {"first": ts[0], "seeds": seeds, "dice": mean_sd(t["dice"] for t in ts),
                     "ptq": mean_sd(t["ptq_dice"] for t in ts), "int8": mean_sd(t["int8_dice"] for t in ts),
                     "vs_fp32": mean_sd(100 * (t["dice"] - fp) for t in ts),
                     "vs_matched": mean_sd(paired) if paired else None,
                     "control": mean_sd(cs.values()) if cs else None, "vs_control": mean_sd(gain) if gain else None}
    return {"rows": rows, "matched": mean_sd(matched.values()) if matched else None,
            "seeds": sorted({t.get("seed", 0) for t in result["tucker"]})}


def latency(paths: dict, x, repeats: int) -> dict:
    """{key: ONNX path} -> {key: {'ort_ms': interleaved 1-thread median, 'nano_ms': simulated Jetson Nano}}."""
    from edgeseg.latency.predict import simulate
    from edgeseg.ort import cpu_session, interleaved_medians

    sessions = {k: cpu_session(p, threads=1) for k, p in paths.items()}
    wall = interleaved_medians(sessions, {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}, repeats)[0]
    out = {}
    for k, p in paths.items():
        pred = simulate(str(p), "jetson-nano")
        out[k] = {"ort_ms": wall[k], "nano_ms": pred.total_ms, "nano_precision": pred.precision}
        if not k.endswith("int8"):
            out[k]["ops_ms"] = op_times(p, x, max(20, repeats // 10))
    return out


OP_GROUPS = {"Conv": "conv", "FusedConv": "conv", "ReorderInput": "reorder", "ReorderOutput": "reorder"}


def op_times(path, x, runs: int) -> dict:
    """ONNX Runtime's profiler over `runs` runs (1 thread, the bench's session): median ms per node, summed into
    head (the SR head's nodes, which Tucker leaves alone), conv (Conv, FusedConv), reorder (layout changes ORT
    inserts for its channel-blocked x86 kernels) and other (pooling, resize, concat)."""
    import json
    import statistics
    import tempfile
    from collections import defaultdict
    from pathlib import Path

    from edgeseg.ort import cpu_session

    with tempfile.TemporaryDirectory(prefix="edgeseg-prof-") as tmp:
        s = cpu_session(path, threads=1, profile_prefix=str(Path(tmp) / "p"))
        feed = {s.get_inputs()[0].name: x}
        for _ in range(runs):
            s.run(None, feed)
        events = json.loads(Path(s.end_profiling()).read_text())
    per = defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per[(e["name"], e["args"].get("op_name", ""))].append(e["dur"])
    out = {"head": 0.0, "conv": 0.0, "reorder": 0.0, "other": 0.0}
    for (name, op), durs in per.items():
        head = name.startswith(("/sr_head", "logits"))  # the exporter names nodes by module; the head ends in the output
        out["head" if head else OP_GROUPS.get(op, "other")] += statistics.median(durs) / 1e3
    return out


def width_latency(trecipe, ckpt, data, scheme_table: dict, widths, dfs, x, repeats: int, out) -> list[dict]:
    """Latency only, for wider backbones than the checkpoint's: an untrained model of each width, whole and
    Tucker-decomposed per DF with `scheme_table`'s rule, exported like the bench's models and timed against each
    other. A float conv's time does not depend on its weight values; Dice is not measured (nothing is trained)."""
    import torch

    from edgeseg.compress.pipeline import input_shape
    from edgeseg.compress.registry import make_scheme
    from edgeseg.export.simplify import simplify
    from edgeseg.export.to_onnx import build_contract, export_onnx
    from edgeseg.models.complexity import count_macs, count_parameters
    from edgeseg.train.checkpoint import build_model
    from edgeseg.train.recipe import with_width

    sets, identity, spacing = data
    rows = []
    for width in widths:
        rw = with_width(trecipe, width)
        contract = build_contract(rw, ckpt["class_names"], ckpt.get("data_identity") or identity, spacing)
        shape, paths, info = input_shape(rw), {}, {}
        for df in (None, *dfs):
            torch.manual_seed(0)
            model = build_model(rw, len(ckpt["class_names"])).eval()
            key = f"width {width} " + ("original" if df is None else f"DF {df:g}")
            records = [] if df is None else make_scheme(dict(scheme_table, df=df)).apply(model, shape)
            folder = out / f"width{width}" / ("original" if df is None else f"df{df:g}")
            folder.mkdir(parents=True, exist_ok=True)
            simplify(export_onnx(model, contract, folder / "model.fp32-raw.onnx", 13), folder / "model.fp32.onnx", x)
            paths[key] = folder / "model.fp32.onnx"
            info[key] = {"width": width, "df": df, "params": count_parameters(model), "macs": count_macs(model, shape),
                         "decomposed": sum(1 for r in records if r.get("decomposed"))}
        lat = latency(paths, x, repeats)
        rows += [{**info[k], "key": k, **lat[k]} for k in paths]
    return rows
