"""The SR-head benchmark's pieces on synthetic arrays: input samplings, variant recipes, cell order, the report."""
from types import SimpleNamespace

import numpy as np

from edgeseg.bench.srhead import _cells
from edgeseg.bench.srhead_report import markdown
from edgeseg.bench.srhead_variants import recipe_for, with_sampling
from edgeseg.data.volume import SliceSet
from edgeseg.preprocess import nearest_downsample
from edgeseg.train.recipe import Recipe


def test_nearest_lowres_takes_the_centre_sample_and_area_is_untouched():
    hr = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8)
    lr = nearest_downsample(hr, 4)
    assert lr.shape == (2, 2, 2)
    assert lr[1, 1, 0] == hr[1, 6, 2]  # offset 4 // 2 = 2
    s = SliceSet(hr=hr, label=np.zeros((2, 8, 8), np.uint8), positions=np.arange(2), class_names=("bg", "fg"))
    assert with_sampling(({"test": s}, "id"), "area")[0]["test"] is s
    sets, identity = with_sampling(({"test": s}, "id"), "nearest")
    assert sets["test"].lowres_method == "nearest" and identity == "id|nearest"
    assert np.array_equal(sets["test"].lowres(4), lr) and not np.array_equal(s.lowres(4), lr)


def test_variant_recipes():
    base = Recipe()
    lr, c, d = (recipe_for(base, "unet", 8, k, 3) for k in ("lr", "c", "d"))
    assert {r.data.slices.lowres_method for r in (lr, c, d)} == {"area_average"}
    assert recipe_for(base, "unet", 8, "c", 3, "nearest").data.slices.lowres_method == "nearest"
    assert (lr.model.sr_head, lr.train.supervision, lr.model.scale, lr.train.seed) == (False, "base", 8, 3)
    assert (c.model.sr_head, c.model.head, c.train.supervision) == (True, "jnet", "deep")
    assert (d.model.scale, d.model.sr_head) == (1, False)


def test_cells_run_the_largest_scale_first_and_full_res_once():
    args = SimpleNamespace(scales=[4, 8], inputs=["area", "nearest"], seeds=[0], variants=["a", "d"], no_full_res=[])
    cells = list(_cells(args, ["unet"]))
    assert [c[4] for c in cells] == [8, 8, 4, 4, 1]
    assert cells[-1] == ("unet", "area", 0, "d", 1)


def test_report_verdict_ablation_and_missing_cells():
    dice = {"lr": 0.75, "lr-nn": 0.72, "a": 0.76, "c": 0.78, "c-nods": 0.77, "e": 0.74}
    cells = [{"model": "unet", "scale": 8, "inputs": "area", "variant": k, "dice": v, "seed": 0} for k, v in dice.items()]
    archs = [{"arch": ["unet", 8, h], "params": 1, "head_params": n, "macs": 1e6, "torch_ms": 1.0, "ort_ms": o, "nano_ms": 1.0}
             for h, n, o in (("", 0, 1.0), ("jnet", 183, 1.2), ("onestage", 276, 1.1))]
    args = SimpleNamespace(scales=[8], variants=["lr", "a", "c", "c-nods", "e"], inputs=["area"], seeds=[0], epochs=30,
                           no_full_res=[], recipe="r.toml", repeats=30, plot="docs/srhead.png", cached_only=True)
    md = markdown(cells, archs, args, missing=["unet-s8-b-area-seed0-e30"])
    assert "--cached-only" in md and "unet-s8-b-area-seed0-e30" in md
    # c vs lr: 0.78 / 0.75 - 1 = +4.0 % (below the paper's +5.5 %); vs lr-nn: +8.3 %
    assert "vs the paper's baseline (lr): 0 of 1" in md and "+4.0 %" in md
    assert "vs the LR mask upsampled nearest (lr-nn): 1 of 1" in md
    # the ablation chain, its total, then c vs the one-stage head (0.78 / 0.74 - 1) and vs pixelshuffle (not trained)
    assert "| unet | 8 | area | +4.2 % | +1.3 % | +1.3 % | +1.3 % | +8.3 % | +5.4 % |  |" in md
    assert "+20.0 %" in md  # ORT latency of the head: 1.2 / 1.0


def test_a_cached_cell_is_reused_only_for_the_same_recipe(tmp_path):
    from dataclasses import replace

    from edgeseg.bench.srhead import _cached
    from edgeseg.train.checkpoint import build_model, save_checkpoint

    recipe = recipe_for(Recipe(), "unet", 8, "c", 0)
    recipe = replace(recipe, model=replace(recipe.model, width=2))
    save_checkpoint(tmp_path / "model.pt", build_model(recipe, 3), recipe, ("bg", "gm", "wm"), "tiny-test", {})
    assert not _cached(recipe, tmp_path)  # no metrics.json: not finished
    (tmp_path / "metrics.json").write_text("{}")
    assert _cached(recipe, tmp_path)
    assert not _cached(replace(recipe, train=replace(recipe.train, seed=1)), tmp_path)
    assert not _cached(replace(recipe, train=replace(recipe.train, augment=replace(recipe.train.augment, enabled=True))), tmp_path)


def test_onnx_dice_is_edgeseg_exports_verification_on_the_cells_own_sampling(tmp_path):
    """A tiny jnet x8 checkpoint, labelled with its own PyTorch prediction on nearest-sampled inputs: through
    the exported ONNX (edgeseg export's pipeline) the Dice stays 1 only if those same inputs were evaluated."""
    import warnings

    import torch

    from edgeseg.bench.srhead_onnx import onnx_dice
    from edgeseg.data.slices import SliceConfig
    from edgeseg.train.checkpoint import build_model, save_checkpoint
    from edgeseg.train.predict import predict_labels
    from edgeseg.train.recipe import DataConfig, ModelConfig

    torch.manual_seed(0)
    recipe = Recipe(model=ModelConfig(name="unet", scale=8, sr_head=True, head="jnet", width=2),
                    data=DataConfig(slices=SliceConfig(canvas=(32, 32), lowres_method="nearest")))
    model = build_model(recipe, 2).eval()
    hr = np.random.default_rng(0).normal(size=(6, 32, 32)).astype(np.float32)
    label = predict_labels(model, nearest_downsample(hr, 8))
    assert 0 < label.mean() < 1  # both classes predicted: the Dice is not trivial
    s = SliceSet(hr=hr, label=label, positions=np.arange(6), class_names=("background", "ventricles"))
    sets, identity = with_sampling(({k: s for k in ("train", "val", "test")}, "tiny"), "nearest")
    cell = tmp_path / "cell"
    save_checkpoint(cell / "model.pt", model, recipe, s.class_names, identity, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = onnx_dice(cell, (sets, identity, (1.0, 1.0, 1.0)))
    assert got["pytorch"] == 1.0 and got["onnx"] >= 0.99 and got["parity"] < 1e-4
    assert (cell / "export-jetson-nano" / "model.fp32-sim.onnx").is_file()
    from edgeseg.contract import read_contract

    assert read_contract(str(cell / "export-jetson-nano" / "model.fp32-sim.onnx")).lowres_method == "nearest"
    done = cell / "export-jetson-nano" / "verification.json"
    stamp = done.stat().st_mtime_ns
    assert onnx_dice(cell, (sets, identity, (1.0, 1.0, 1.0))) == got and done.stat().st_mtime_ns == stamp  # reused


def test_paired_gains_and_the_verdict_line():
    from edgeseg.bench.srhead_report import _verdict, paired_gain

    seeds = {"lr": {0: 0.5, 1: 0.6, 2: 0.7}, "c": {0: 0.55, 1: 0.6, 2: 0.84}}
    assert np.allclose(paired_gain(seeds, "c", "lr"), [0.1, 0.0, 0.2])
    dice = {("m1", 8, "nearest", "lr"): [0.5], ("m1", 8, "nearest", "c"): [0.56],  # +12 %
            ("m2", 8, "nearest", "lr"): [0.5], ("m2", 8, "nearest", "c"): [0.52]}  # +4 %
    arch = {("m1", 8, ""): {"ort_ms": 1.0, "nano_ms": 2.0}, ("m1", 8, "jnet"): {"ort_ms": 1.2, "nano_ms": 2.6},  # Nano +30 %
            ("m2", 8, ""): {"ort_ms": 1.0, "nano_ms": 2.0}, ("m2", 8, "jnet"): {"ort_ms": 1.1, "nano_ms": 2.2}}
    (line,) = _verdict(dice, arch)
    assert "Dice target met on 1 of 2" in line and "together on 0" in line and "not reproduced" in line
    assert "m1 +12.0 % Dice, +20.0 % ORT, +30.0 % Nano" in line


def test_robustness_table_gains_and_which_recipes_it_measures():
    from dataclasses import replace

    from edgeseg.bench.srhead_robustness import markdown as robustness_markdown, unsupported
    from edgeseg.bench.srhead_variants import VARIANTS

    assert "onestage" == VARIANTS["e"].head and VARIANTS["e"].supervision == "deep"
    r = Recipe()
    assert unsupported(replace(r, data=replace(r.data, source="mni152"))) == ""
    coronal = replace(r, data=replace(r.data, source="mni152:ventricles", slices=replace(r.data.slices, axis="coronal")))
    assert unsupported(coronal) == "" and "MNI152" in unsupported(replace(r, data=replace(r.data, source="ixi")))
    cell = lambda key, rob: {"model": "unet", "scale": 8, "seed": 0, "variant": key, "robustness": rob}  # noqa: E731
    lines = robustness_markdown([cell("lr", {"v1": 0.5, "v2": 0.8}), cell("c", {"v1": 0.6, "v2": None}), {"variant": "a"}])
    text = "\n".join(lines)
    assert "| v2 | 0.8000 | failed |" in text and "| **worst variant** | **0.5000** | **0.6000** |" in text
    assert "c vs lr over the 1 variants: mean +20.0 %" in text and ">= +5.5 % on 1 of 1" in text
    assert robustness_markdown([{"variant": "lr"}]) == []
