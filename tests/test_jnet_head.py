"""The J-Net heads: parameter budget, scales, the authors' structure (linear, shared 3x3), gradients, ONNX, export."""
import io

import numpy as np
import pytest
import torch

from edgeseg.errors import EdgesegError
from edgeseg.models import create_model, get_head_class, list_heads

CLASSES = ("background", "gm", "wm")


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors; the machine's cores are shared
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_heads_are_registered_and_unknown_names_are_refused():
    assert {"pixelshuffle", "jnet", "jnet-authors"} <= set(list_heads())
    with pytest.raises(EdgesegError, match=r"unknown SR head 'jnett' \(did you mean 'jnet'\?\)"):
        create_model("unet", head="jnett")


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_jnet_head_is_under_200_parameters_for_three_classes(scale):
    # jnet_head.py: 19C^2+4C at x4/x8, 13C^2+2C at x2 (C=3: 183, 183, 123)
    count = n_params(get_head_class("jnet")(3, scale))
    assert count == {2: 123, 4: 183, 8: 183}[scale]
    assert count < 200


def test_authors_sharing_counts():
    # the authors' 32->256 (x8) model for one class: 2 main stages of 15 + branch 2x5+10 + fusion 18+19 = 87
    assert n_params(get_head_class("jnet-authors")(1, 8)) == 87
    assert n_params(get_head_class("jnet-authors")(3, 8)) == 723  # stated in docs/models.md: over budget at C=3


@pytest.mark.parametrize("head", ["jnet", "jnet-authors"])
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_pyramid_has_every_scale_and_forward_is_its_last(head, scale):
    h = get_head_class(head)(3, scale).eval()
    logits = torch.randn(2, 3, 5, 6)
    outs = h.pyramid(logits, None)
    assert [tuple(o.shape) for o in outs] == [(2, 3, 5 * 2**k, 6 * 2**k) for k in range(int(np.log2(scale)) + 1)]
    assert outs[0] is logits
    assert torch.equal(h(logits, None), outs[-1])


@pytest.mark.parametrize("head", ["jnet", "jnet-authors"])
def test_head_is_affine_in_the_logits_as_the_authors(head):
    # no activation anywhere: h(x + y) - h(y) == h(x) - h(0) up to float rounding
    h = get_head_class(head)(3, 8).eval()
    x, y, zero = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    with torch.no_grad():
        lhs, rhs = h(x + y) - h(y), h(x) - h(zero)
    assert torch.allclose(lhs, rhs, atol=1e-5)  # float32 sums of ~100 terms


def test_jnet_shares_one_3x3_across_every_stage():
    h = get_head_class("jnet")(3, 8)
    convs3 = [m for m in h.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    ups = [m for m in h.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs3) == 1 and len(ups) == 2  # one refine; main/last ConvTranspose + branch ConvTranspose
    assert all(m.groups == 1 for m in [*convs3, *ups])  # full convs: classes mix (not depthwise)


@pytest.mark.parametrize("head", ["jnet", "jnet-authors"])
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_every_head_parameter_gets_a_gradient_under_deep_supervision(head, scale):
    from edgeseg.train.supervision import deep_supervision_loss

    model = create_model("unet", 1, 3, scale, head=head, width=2).train()
    x = torch.randn(2, 1, 32 // scale, 32 // scale)
    deep_supervision_loss(model.pyramid(x), torch.randint(0, 3, (2, 32, 32))).backward()
    for name, p in model.sr_head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_opset13_parity_and_nano_check_at_x8_with_padding(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from edgeseg.export.check import check_model, errors, load_target

    model = create_model("unet", 1, 3, 8, head="jnet", width=2).eval()
    x = torch.randn(1, 1, 28, 24)  # 224x192 at x8: not a multiple of the backbone's 8 -> padded inside
    f = io.BytesIO()
    try:
        torch.onnx.export(model, x, f, opset_version=13, dynamo=False, input_names=["x"])
    except TypeError:  # torch without the dynamo switch
        torch.onnx.export(model, x, f, opset_version=13, input_names=["x"])
    proto = onnx.load_from_string(f.getvalue())
    ops = {n.op_type for n in proto.graph.node}
    assert {"ConvTranspose", "Pad"} <= ops
    assert not errors(check_model(proto, load_target("jetson-nano")))
    got = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).numpy()
    assert got.shape == (1, 3, 224, 192)
    assert np.abs(got - expected).max() < 1e-4  # FP32 torch vs ORT (STYLE.md: ~1e-3 to 1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_edgeseg_export_on_a_jnet_x8_checkpoint(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from edgeseg.cli import main
    from edgeseg.train.checkpoint import build_model, save_checkpoint
    from edgeseg.train.recipe import ModelConfig, Recipe

    recipe = Recipe(model=ModelConfig(name="unet", scale=8, sr_head=True, head="jnet", width=2))
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, build_model(recipe, len(CLASSES)), recipe, CLASSES, "tiny-test", {})
    out = tmp_path / "exp"
    assert main(["export", str(ckpt), "--target", "jetson-nano", "--out", str(out), "--calibration-slices", "8", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["check", str(out / "model.fp32-sim.onnx")]) == 0  # TensorRT 8.2 (Nano GPU) path
