"""Compression from the papers: fixed-point QAT grid, TernaryNet vs binary, Tucker-2 (Dice, size, latency).

Starts from one FP32 checkpoint (trained from the default recipe when missing, cached under runs/).
Fixed point: weight bits x activation bits, each a short QAT fine-tune from the FP32 weights, with an
FP32 fine-tune of the same length as the control for Xu et al.'s regularisation claim. Ternary and
binary: longer fine-tunes with the tanh continuation. Tucker: post-training and after a short fine-tune
at several rank factors, with ONNX Runtime latency (1 thread, median, interleaved) vs the original.
All on the real test split; every QDQ model's Dice is also measured in ONNX Runtime.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", default="runs/unet-s2-brain/model.pt")
    p.add_argument("--train-recipe", default="recipes/unet-s2-brain.toml", help="trains --checkpoint when it is missing")
    p.add_argument("--weight-bits", nargs="*", type=int, default=[2, 4, 6, 8])
    p.add_argument("--act-bits", nargs="*", type=int, default=[4, 6, 8])
    p.add_argument("--qat-epochs", type=int, default=4)
    p.add_argument("--ternary-epochs", type=int, default=12)
    p.add_argument("--tucker-df", nargs="*", type=float, default=[0.9, 0.7, 0.5, 0.3, 0.2])
    p.add_argument("--tucker-epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-3, help="fine-tune learning rate (Tucker uses lr/3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=30, help="timed ONNX Runtime runs per model")
    p.add_argument("--out", default="runs/bench-compression")
    p.add_argument("--docs", default="docs/BENCHMARKS.md")
    p.add_argument("--plot", default="docs/compression.png")


class _NoScheme:
    """FP32 fine-tune control: nothing to anneal."""

    def label(self):
        return "FP32"

    def on_epoch(self, model, epoch, epochs):
        pass


def _recipe(scheme: dict, epochs: int, args, lr: float):
    from edgeseg.compress.recipe import CompressRecipe, ExportConfig, FinetuneConfig, SourceConfig

    return CompressRecipe(scheme=scheme, source=SourceConfig(checkpoint=args.checkpoint, train_recipe=args.train_recipe),
                          finetune=FinetuneConfig(epochs=epochs, lr=lr, seed=args.seed), export=ExportConfig(onnx=True))


def _row(method: str, setting: str, m: dict, group: str) -> dict:
    files = m.get("onnx", {}).get("files", {})
    return {"method": method, "setting": setting, "group": group, "dice": m["test_dice"], "ptq_dice": m["post_training_test_dice"],
            "kb": m["storage"]["kb"], "params": m["parameters"], "macs": m["macs"],
            "ort": {k: {"dice": f["ort_test_dice"], "diff": f["abs_diff"], "kb": f["kb"]} for k, f in files.items()},
            "seconds": m.get("finetune", {}).get("seconds", 0.0)}


def _latency(paths: dict, x, repeats: int) -> dict:
    from edgeseg.ort import cpu_session, interleaved_medians

    sessions = {k: cpu_session(p, threads=1) for k, p in paths.items()}
    return interleaved_medians(sessions, {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}, repeats)[0]


def run(args) -> int:
    import torch

    from edgeseg.bench.compression_report import markdown, plot
    from edgeseg.bench.report import write_section
    from edgeseg.compress.finetune import finetune
    from edgeseg.compress.memory import fp32_storage
    from edgeseg.compress.pipeline import compress, export_float_int8, input_shape, load_source
    from edgeseg.compress.recipe import FinetuneConfig
    from edgeseg.export.pipeline import load_data
    from edgeseg.export.to_onnx import build_contract
    from edgeseg.models.complexity import count_macs, count_parameters
    from edgeseg.train.predict import evaluate_model

    started = time.perf_counter()
    out = Path(args.out)
    source = load_source(_recipe({"name": "fixedpoint"}, 0, args, args.lr))
    fp32, trecipe, ckpt = source
    data = load_data(trecipe)
    sets, identity, spacing = data
    scale, shape = trecipe.model.scale, input_shape(trecipe)
    base = {"method": "FP32", "setting": "trained", "group": "fp32", "dice": evaluate_model(fp32, sets["test"], scale)["mean_foreground_dice"],
            "kb": fp32_storage(fp32)["kb"], "params": count_parameters(fp32), "macs": count_macs(fp32, shape)}
    rows = [base]
    contract = build_contract(trecipe, ckpt["class_names"], ckpt.get("data_identity") or identity, spacing)
    original = export_float_int8(fp32, contract, sets, scale, out / "fp32", 13)

    control = copy.deepcopy(fp32)
    ft = finetune(control, _NoScheme(), sets, scale, FinetuneConfig(epochs=args.qat_epochs, lr=args.lr, seed=args.seed), True, "FP32 control")
    rows.append({**base, "setting": f"fine-tuned {args.qat_epochs} ep", "group": "fp32-ft", "seconds": ft["seconds"],
                 "dice": evaluate_model(control, sets["test"], scale)["mean_foreground_dice"]})

    def one(scheme: dict, epochs: int, lr: float, name: str):
        return compress(_recipe(scheme, epochs, args, lr), data=data, source=source, out_dir=out / name)

    for wb in args.weight_bits:
        for ab in args.act_bits:
            m = one({"name": "fixedpoint", "weight_bits": wb, "act_bits": ab}, args.qat_epochs, args.lr, f"w{wb}a{ab}")
            rows.append(_row("fixed point", f"W{wb}A{ab}", m, "fixedpoint"))
    for name in ("ternary", "binary"):
        m = one({"name": name}, args.ternary_epochs, args.lr, name)
        rows.append(_row(name, f"{args.ternary_epochs} ep, beta 3->8", m, name))
    lat_paths = {"original fp32": original["fp32"], "original int8": original["int8"]}
    for df in args.tucker_df:
        for epochs, tag in ((0, "post-training"), (args.tucker_epochs, f"fine-tuned {args.tucker_epochs} ep")):
            m = one({"name": "tucker", "df": df}, epochs, args.lr / 3, f"tucker-df{df:g}-e{epochs}")
            rows.append(_row("Tucker", f"DF {df:g}, {tag}", m, "tucker-ft" if epochs else "tucker-ptq") | {"df": df})
            if epochs:
                lat_paths[f"DF {df:g} fp32"] = out / f"tucker-df{df:g}-e{epochs}" / "model.fp32.onnx"
                lat_paths[f"DF {df:g} int8"] = out / f"tucker-df{df:g}-e{epochs}" / "model.int8.onnx"
    x = sets["test"].lowres(scale)[:1, None].copy()
    latency = _latency(lat_paths, x, args.repeats)
    total = time.perf_counter() - started
    result = {"rows": rows, "latency_ms": latency, "seconds": total, "seed": args.seed,
              "fp32_checkpoint": args.checkpoint, "fp32_train_seed": trecipe.train.seed, "threads": torch.get_num_threads()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    md = markdown(result, args)
    write_section("compression", md, args.docs)
    plot(result, args.plot)
    print(md)
    return 0
