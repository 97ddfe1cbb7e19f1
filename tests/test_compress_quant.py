"""Quantizers: value sets, straight-through gradients, the tanh continuation, scheme lookup, honest storage."""
import pytest
import torch

from edgeseg.compress.fake_quant import ActFakeQuant, WeightFakeQuant, levels_per_channel
from edgeseg.compress.ternary import BinaryAct, BinaryWeight, TernaryAct, TernaryWeight, hard_ternary, tt
from edgeseg.errors import EdgesegError


def _w(seed=0):
    return torch.randn(6, 5, 3, 3, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("bits", [2, 4, 6, 8])
def test_weight_quantizer_grid(bits):
    w = _w()
    q = WeightFakeQuant(bits)
    out = q(w)
    ints, scale = q.integers(w)
    assert levels_per_channel(out) <= 2 ** bits - 1  # symmetric: -(2^(b-1)-1) .. 2^(b-1)-1
    assert torch.all(ints.abs() <= 2 ** (bits - 1) - 1)
    assert torch.allclose(out, ints * scale.view(-1, 1, 1, 1))
    assert torch.allclose(out / scale.view(-1, 1, 1, 1), torch.round(out / scale.view(-1, 1, 1, 1)), atol=1e-5)
    assert (out - w).abs().max() <= scale.max() / 2 + 1e-6


def test_pow2_scales_are_powers_of_two():
    _, scale = WeightFakeQuant(4, pow2=True).integers(_w())
    assert torch.allclose(torch.log2(scale), torch.round(torch.log2(scale)))


def test_weight_gradient_passes_straight_through():
    w = _w().requires_grad_()
    g = torch.randn_like(w)
    WeightFakeQuant(3)(w).backward(g)
    assert torch.equal(w.grad, g)


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_activation_quantizer_unsigned_grid_and_clipped_ste(bits):
    q = ActFakeQuant(bits)
    q.observing = True
    q(torch.linspace(0, 3.0, 50))
    q.observing = False
    q.eval()
    assert not bool(q.signed) and float(q.range) == pytest.approx(3.0)
    x = torch.linspace(-1, 5, 301).requires_grad_()
    y = q(x)
    s = float(q.scale())
    levels = torch.unique(torch.round(y.detach() / s))
    assert levels.min() >= 0 and levels.max() <= 2 ** bits - 1 and len(levels) <= 2 ** bits
    g = torch.randn(301)
    y.backward(g)
    inside = (x.detach() >= 0) & (x.detach() <= 3.0)
    assert torch.equal(x.grad[inside], g[inside])
    assert torch.all(x.grad[~inside] == 0)


def test_activation_quantizer_signed_when_negative_inputs():
    q = ActFakeQuant(4)
    q.observing = True
    q(torch.tensor([-2.0, 1.0]))
    q.observing = False
    assert bool(q.signed) and q.bounds() == (-7, 7)


def test_ternary_weights_take_three_values_per_filter():
    w = _w()
    tw = TernaryWeight()
    out = tw(w)
    q, alpha = tw.integers(w)
    assert set(torch.unique(q).tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.allclose(out, q * alpha.view(-1, 1, 1, 1))  # {-alpha, 0, alpha} per filter (STE adds 1-ulp noise)
    for c in range(w.shape[0]):
        delta = 0.7 * w[c].abs().mean()
        assert alpha[c] == pytest.approx(w[c].abs()[w[c].abs() > delta].mean().item(), rel=1e-5)
    w.requires_grad_()
    g = torch.randn_like(w)
    tw(w).backward(g)
    assert torch.equal(w.grad, g)


def test_binary_weights_take_two_values():
    w = _w()
    out = BinaryWeight()(w)
    q, alpha = BinaryWeight().integers(w)
    assert set(torch.unique(q).tolist()) == {-1.0, 1.0}
    assert torch.allclose(out, q * w.abs().mean(dim=(1, 2, 3)).view(-1, 1, 1, 1))


def test_tanh_continuation_tends_to_the_step():
    u = torch.linspace(-2, 2, 401)
    u = u[(u.abs() - 0.5).abs() > 0.05]  # away from the steps themselves
    errors = [float((tt(u, beta) - hard_ternary(u)).abs().max()) for beta in (1, 3, 8, 30, 100)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-3
    assert torch.allclose(tt(torch.zeros(1), 5.0), torch.zeros(1))


def test_ternary_activation_beta_is_used_and_eval_is_hard():
    act = TernaryAct(beta=3.0)
    act.observing = True
    act(torch.full((10,), 1.0))
    act.observing = False
    x = torch.linspace(-3, 3, 61)
    act.train()
    soft3 = act(x).detach()
    act.beta = 8.0
    soft8 = act(x).detach()
    assert not torch.allclose(soft3, soft8)  # beta really reaches forward
    act.eval()
    s = float(act.scale.detach())
    assert set(torch.unique(act(x)).tolist()) <= {-s, 0.0, s}
    b = BinaryAct()
    b.observing = True
    b(torch.ones(3))
    b.observing = False
    b.eval()
    assert set(torch.unique(b(torch.tensor([-1.0, 2.0]))).tolist()) == {-float(b.scale.detach()), float(b.scale.detach())}


def test_unknown_scheme_lists_known_ones():
    from edgeseg.compress.registry import make_scheme

    with pytest.raises(EdgesegError, match="fixedpoint.*tucker"):
        make_scheme({"name": "pruning"})
    with pytest.raises(EdgesegError, match="unknown key"):
        make_scheme({"name": "tucker", "rank": 3})


def test_storage_counts_packed_bits_and_scales():
    from edgeseg.compress.memory import fp32_storage, storage
    from edgeseg.compress.qat import QuantConv2d

    conv = QuantConv2d(4, 6, 3, bias=True, weight_q=WeightFakeQuant(4), act_q=ActFakeQuant(8))
    model = torch.nn.Sequential(conv, torch.nn.BatchNorm2d(6))
    s = storage(model)
    assert s["bits"] == 4 * 216 + 32 * (6 + 1) + 32 * (6 + 12)  # weights, scales (channels + activation), bias + BN
    assert fp32_storage(model)["bits"] == 32 * (216 + 6 + 12)


def test_example_recipes_parse_and_bad_keys_are_named(tmp_path):
    from pathlib import Path

    from edgeseg.compress.recipe import load_compress_recipe

    for path in sorted(Path(__file__).resolve().parents[1].glob("recipes/compress-*.toml")):
        assert load_compress_recipe(path).make_scheme().name in ("fixedpoint", "perone", "ternary", "binary", "ternarynet", "tucker")
    bad = tmp_path / "bad.toml"
    bad.write_text('[scheme]\nname = "fixedpoint"\nweight_bits = 9\n')
    with pytest.raises(EdgesegError, match="bits must be 2..8"):
        load_compress_recipe(bad)
    bad.write_text('[scheme]\nname = "fixedpoint"\nlayers = { "backbone.*" = "w4" }\n')
    recipe = load_compress_recipe(bad)  # layer settings are checked against the model when applied
    from edgeseg.models import create_model

    with pytest.raises(EdgesegError, match="w<2-8>a<2-8>"):
        recipe.make_scheme().apply(create_model("unet", 1, 3, 2, width=2), (1, 1, 16, 16))


def test_bn_reestimation_uses_the_hard_activations():
    from edgeseg.compress.ternary import reestimate_bn

    torch.manual_seed(0)
    act, conv, bn = TernaryAct(beta=1.0), torch.nn.Conv2d(2, 3, 1, bias=False), torch.nn.BatchNorm2d(3)
    model = torch.nn.Sequential(act, conv, bn)
    x = torch.randn(4, 2, 5, 5)
    act.observing = True
    model.eval()(x)
    act.observing = False
    reestimate_bn(model, [x])
    with torch.no_grad():
        s = act.scale.abs()
        expected = conv(s * hard_ternary(x / s)).mean(dim=(0, 2, 3))
    assert torch.allclose(bn.running_mean, expected, atol=1e-5)
    assert not act.hard_in_training and bn.momentum == 0.1
