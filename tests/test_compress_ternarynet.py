"""TernaryNet's placement (BN -> tt_beta replacing ReLU): levels on real slices, the STE, training from scratch, Perone's Q-format."""
import numpy as np
import pytest
import torch

from edgeseg.compress.registry import make_scheme
from edgeseg.compress.ternarynet import SignedBinary, SignedTernary, activation_levels, tt_grad


@pytest.fixture(scope="module")
def slices():
    """16 real training slices of the bundled MNI152 at the default recipe's x2 input."""
    from edgeseg.export.pipeline import load_data
    from edgeseg.train.recipe import load_recipe

    sets, _, _ = load_data(load_recipe("recipes/unet-s2-brain.toml"))
    return torch.from_numpy(sets["train"].lowres(2)[::6, None].copy())


def _model(name, x):
    from edgeseg.compress.scratch import recalibrate_bn
    from edgeseg.models import create_model

    torch.manual_seed(0)
    model = create_model("unet", 1, 3, 2, sr_head=True, width=4)
    records = make_scheme({"name": name}).apply(model, (1, 1) + tuple(x.shape[-2:]))
    recalibrate_bn(model, x, 8)  # BN statistics of these slices: the step sits at +-0.5 BN units
    return model, records


@pytest.mark.parametrize("name, levels", [("ternarynet", {-1.0, 0.0, 1.0}), ("binarynet", {-1.0, 1.0})])
def test_hard_activations_take_every_level_on_real_slices(slices, name, levels):
    model, records = _model(name, slices)
    acts = [r["activation"] for r in records if "activation" in r]
    assert len(acts) == 14 and not any(isinstance(m, torch.nn.ReLU) for m in model.backbone.modules())
    seen = activation_levels(model, slices)
    assert sorted(seen) == sorted(acts)
    for layer, share in seen.items():
        assert set(share) == levels, (layer, share)
        assert min(share.values()) > 0.02, (layer, share)  # each level a real share (first layer: the flat background is +-1)


def test_ste_forward_is_hard_and_gradient_is_the_staircase_slope():
    x = torch.linspace(-2, 2, 41, requires_grad=True)
    act = SignedTernary(beta=4.0).train()
    y = act(x)
    assert set(y.detach().tolist()) == {-1.0, 0.0, 1.0} and y[20] == 0 and y[30] == 1  # 0 -> 0, 1.0 -> 1
    y.sum().backward()
    assert torch.allclose(x.grad, tt_grad(x.detach(), 4.0), atol=1e-6)
    assert x.grad[15] > x.grad[20]  # the slope peaks at the steps (+-0.5), not at 0
    soft = SignedTernary(beta=4.0, ste=False).train()(x.detach())
    assert len(torch.unique(soft)) > 3  # the smooth forward of the released script
    b = SignedBinary(beta=4.0).eval()(x.detach())
    assert set(b.tolist()) == {-1.0, 1.0}


def test_scratch_training_decays_lr_freezes_bn_and_selects_on_validation(slices):
    from edgeseg.compress.recipe import FinetuneConfig, ScratchConfig
    from edgeseg.compress.scratch import scratch_recipe, train_scratch
    from edgeseg.data.volume import SliceSet
    from edgeseg.train.recipe import Recipe

    hr = torch.nn.functional.interpolate(slices, scale_factor=2).numpy()[:, 0]
    label = (hr > 0.3).astype(np.uint8) + (hr > 0.7)
    s = SliceSet(hr=hr, label=label, positions=np.arange(len(hr)), class_names=("bg", "a", "b"))
    sets = {"train": s, "val": s}
    scheme = make_scheme({"name": "ternarynet"})
    cfg = ScratchConfig(enabled=True, width=2, epochs=3, lr=1e-2, lr_decay=0.5, bn_freeze_epochs=1)
    recipe = scratch_recipe(Recipe(), cfg.width)
    assert recipe.model.width == 2 and recipe.model.scale == Recipe().model.scale
    model, records, info = train_scratch(recipe, scheme, sets, cfg, FinetuneConfig(threads=1, batch_size=4), (1, 1, 48, 48), False)
    assert info["width"] == 2 and len(info["history"]) == 3
    assert [h["bn_frozen"] for h in info["history"]] == [False, False, True]
    assert info["best_val"] == max([h["val_mean_foreground_dice"] for h in info["history"]] + [info["best_val"]])
    assert info["selected"] in ("best epoch", "best epoch, BN recalibrated")
    assert not model.training and all(m.beta == 8.0 for m in model.modules() if isinstance(m, SignedTernary))


def test_perone_q_format_one_power_of_two_scale_per_layer():
    from edgeseg.compress.fake_quant import WeightFakeQuant
    from edgeseg.compress.memory import storage
    from edgeseg.compress.qat import QuantConv2d

    w = torch.randn(6, 5, 3, 3, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.1, 2, 6).view(-1, 1, 1, 1)
    q, s = WeightFakeQuant(4, pow2=True, per_layer=True).integers(w)
    assert torch.all(s == s[0]) and float(torch.log2(s[0])) == round(float(torch.log2(s[0])))
    assert q.abs().max() <= 7 and float(s[0]) >= w.abs().max() / 7  # the largest weight fits Q(m).(3-m)
    _, s_ch = WeightFakeQuant(4).integers(w)
    assert len(torch.unique(s_ch)) == 6
    scheme = make_scheme({"name": "perone", "weight_bits": 4, "act_bits": 6})
    assert scheme.params.pow2 and scheme.params.per_layer
    conv = QuantConv2d(5, 6, 3, bias=False, weight_q=WeightFakeQuant(4, True, True), act_q=None)
    assert storage(conv)["bits"] == 4 * 270 + 32 * 1


def test_float_last_act_keeps_only_the_classifiers_input_a_float_relu(slices):
    from edgeseg.models import create_model

    model = create_model("unet", 1, 3, 2, sr_head=True, width=4)
    records = make_scheme({"name": "ternarynet", "float_last_act": True}).apply(model, (1, 1) + tuple(slices.shape[-2:]))
    acts = [r["activation"] for r in records if "activation" in r]
    relus = [n for n, m in model.backbone.named_modules() if isinstance(m, torch.nn.ReLU)]
    assert len(acts) == 13 and relus == ["dec.2.1.2"]  # the last decoder conv's ReLU, right before the classifier
    assert sum(isinstance(m, SignedTernary) for m in model.modules()) == 13


def test_ablation_epochs_stretch_the_lr_schedule_to_the_same_final_lr():
    from edgeseg.bench.compression_ternary import arm_recipe
    from edgeseg.compress.recipe import load_compress_recipe

    base = load_compress_recipe("recipes/compress-ternarynet.toml")
    same = arm_recipe(base, "ternarynet", 1, None, None, None).scratch
    assert same.lr_decay == base.scratch.lr_decay and same.epochs == base.scratch.epochs
    long = arm_recipe(base, "binarynet", 1, 3 * base.scratch.epochs, None, 2).scratch
    assert long.epochs == 3 * base.scratch.epochs and long.scale == 2
    assert long.lr_decay ** long.epochs == pytest.approx(base.scratch.lr_decay ** base.scratch.epochs, rel=1e-9)


def test_quantize_acts_false_ternarises_the_weights_only(slices):
    from edgeseg.compress.qat import QuantConv2d
    from edgeseg.models import create_model

    model = create_model("unet", 1, 3, 2, sr_head=True, width=4)
    records = make_scheme({"name": "ternarynet", "quantize_acts": False}).apply(model, (1, 1) + tuple(slices.shape[-2:]))
    assert not any("activation" in r for r in records) and len(records) == 13  # 15 convs less the first and the classifier
    assert sum(isinstance(m, torch.nn.ReLU) for m in model.backbone.modules()) == 14
    assert sum(isinstance(m, QuantConv2d) for m in model.modules()) == 13
