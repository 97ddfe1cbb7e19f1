"""Tucker-2 per rank factor: post-training, fine-tuned with the recipe's budget, the same decomposed
architecture trained from scratch with the same number of epochs, ORT CPU latency and simulated Nano latency.

The fine-tune budget and lr come from recipes/compress-tucker.toml ([finetune]); only DF changes per row.
The control starts from PyTorch's default init of the decomposed layers (Scheme.scratch_init) and runs
the [scratch] protocol (Adam + per-epoch decay) for the same epochs.
"""
from __future__ import annotations

import dataclasses


def df_recipe(base, df: float, epochs: int | None, control: bool):
    ft = base.finetune if epochs is None else dataclasses.replace(base.finetune, epochs=epochs)
    scratch = dataclasses.replace(base.scratch, enabled=control, epochs=max(1, ft.epochs), width=0, scale=0)
    return dataclasses.replace(base, scheme=dict(base.scheme, df=df), finetune=ft, scratch=scratch,
                               export=dataclasses.replace(base.export, onnx=not control))


def run_df(base, df: float, args, data, source, out) -> dict:
    from edgeseg.compress.pipeline import compress

    recipe = df_recipe(base, df, args.tucker_epochs, control=False)
    folder = out / f"tucker-df{df:g}"
    m = compress(recipe, data=data, source=source, out_dir=folder)
    files = m["onnx"]["files"]
    return {"df": df, "params": m["parameters"], "macs": m["macs"], "ptq_dice": m["post_training_test_dice"],
            "dice": m["test_dice"], "epochs": recipe.finetune.epochs, "lr": recipe.finetune.lr,
            "seconds": m.get("finetune", {}).get("seconds", 0.0), "int8_dice": files["int8"]["ort_test_dice"],
            "int8_diff": files["int8"]["abs_diff"], "fp32_onnx": str(folder / "model.fp32.onnx"),
            "int8_onnx": str(folder / "model.int8.onnx")}


def run_control(base, df: float, args, data, source, out) -> dict:
    from edgeseg.compress.pipeline import compress

    recipe = df_recipe(base, df, args.tucker_epochs, control=True)
    m = compress(recipe, data=data, source=source, out_dir=out / f"tucker-df{df:g}-scratch")
    return {"df": df, "params": m["parameters"], "dice": m["test_dice"], "epochs": recipe.scratch.epochs,
            "lr": recipe.scratch.lr, "seconds": m["scratch"]["seconds"]}


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
    return out
