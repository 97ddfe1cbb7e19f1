"""Every registered backbone with and without the SR head: shapes, gradients, head init, padding, x8, errors, ONNX parity.

The J-Net heads have their own file (test_jnet_head.py)."""
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgeseg.errors import EdgesegError
from edgeseg.models import create_model, get_backbone_class, list_models
from edgeseg.models.sr_head import SRHead

TINY = 4  # width for speed; every backbone scales its channels from it
FULL = (32, 32)  # full-resolution test size: 8x8 at scale 4, 4x4 (padded to 8x8) at scale 8


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    # tiny tensors: a second thread only adds synchronisation, and the machine's cores are shared
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def tiny(name, scale, sr_head=True, num_classes=3):
    return create_model(name, 1, num_classes, scale, sr_head=sr_head, width=TINY)


def test_the_new_backbones_are_registered():
    assert {"unet", "enet", "mobilenetv2", "fastscnn", "espnet"} <= set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_input_multiple_is_enough_for_the_backbone(name):
    """Any size that is a multiple of the declared `input_multiple` keeps its resolution through the backbone."""
    m = get_backbone_class(name).input_multiple
    with torch.no_grad():
        for h, w in ((3 * m, 5 * m), (7 * m, 2 * m)):
            y = get_backbone_class(name)(1, 3, width=TINY).eval()(torch.randn(1, 1, h, w))
            assert y.shape == (1, 3, h, w), (h, w)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_default_recipe_canvas_gives_full_resolution_logits(name, scale):
    """The released recipe's canvas at every scale: the low-res input need not be a multiple (padded inside)."""
    from edgeseg.train.recipe import load_recipe

    h, w = load_recipe("recipes/unet-s2-brain.toml").data.slices.canvas
    with torch.no_grad():
        y = tiny(name, scale).eval()(torch.randn(1, 1, h // scale, w // scale))
    assert y.shape == (1, 3, h, w)


@pytest.mark.parametrize("name", list_models())
def test_default_width_is_lightweight(name):
    n = sum(p.numel() for p in get_backbone_class(name)(1, 3).parameters())
    assert 30_000 < n < 500_000


@pytest.mark.parametrize("name", list_models())
def test_backbone_keeps_input_resolution(name):
    with torch.no_grad():
        y = get_backbone_class(name)(1, 3, width=TINY).eval()(torch.randn(1, 1, 56, 48))
    assert y.shape == (1, 3, 56, 48)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("scale", [1, 2, 4, 8])
@pytest.mark.parametrize("sr_head", [True, False])
def test_full_resolution_output(name, scale, sr_head):
    model = tiny(name, scale, sr_head).eval()
    assert (model.sr_head is not None) == (sr_head and scale > 1)
    with torch.no_grad():
        y = model(torch.randn(2, 1, FULL[0] // scale, FULL[1] // scale))
    assert y.shape == (2, 3, *FULL)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", list_models())
def test_every_parameter_gets_a_gradient(name):
    model = tiny(name, 2).train()
    with torch.no_grad():  # the head starts with its learned path switched off; switch it on
        model.sr_head.fuse.weight.add_(0.1 * torch.randn_like(model.sr_head.fuse.weight))
    x = torch.randn(2, 1, 16, 16)
    target = torch.randint(0, 3, (2, *FULL))
    F.cross_entropy(model(x), target).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("num_classes", [2, 3, 4])
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_sr_head_is_tiny(num_classes, scale):
    assert sum(p.numel() for p in SRHead(num_classes, scale).parameters()) < 200


def test_sr_head_exact_parameter_count():
    # sr_head.py: 4C*log2(scale) + 10C + (2C+1)*C + C; C=3, scale 2: 12 + 30 + 21 + 3
    assert sum(p.numel() for p in SRHead(3, 2).parameters()) == 66


@pytest.mark.parametrize("scale", [2, 4])
def test_sr_head_fusion_at_low_resolution_is_the_1x1_over_the_full_resolution_concat(scale):
    import torch.nn.functional as F

    torch.manual_seed(0)
    head = SRHead(3, scale).eval()
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0, 0.5)
        logits, image = torch.randn(2, 3, 6, 5), torch.randn(2, 1, 6, 5)
        x = logits
        for up in head.up:
            x = head.act(head.refine(up(x)))
        full = [F.interpolate(t, scale_factor=scale, mode="bilinear", align_corners=False) for t in (logits, image)]
        reference = F.conv2d(torch.cat([x, *full], dim=1), head.fuse.weight, head.fuse.bias)  # the J-Net-style fusion
        torch.testing.assert_close(head(logits, image), reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("scale", [2, 4])
def test_untrained_head_is_bilinear_upsampling(name, scale):
    model = tiny(name, scale).eval()
    x = torch.randn(2, 1, FULL[0] // scale, FULL[1] // scale)
    with torch.no_grad():
        expected = F.interpolate(model.backbone(x), scale_factor=scale, mode="bilinear", align_corners=False)
        assert torch.allclose(model(x), expected, atol=1e-5)


@pytest.mark.parametrize("name", list_models())
def test_input_not_a_multiple_is_padded_inside_and_cropped_back(name):
    # the padding rule (segmodel.py): zero-pad the low-res input to the backbone's multiple, crop the logits back
    model = tiny(name, 2, sr_head=False).eval()
    m = model.multiple
    x = torch.randn(1, 1, 2 * m - 3, m + 1)
    top, bottom, left, right = model.padding(*x.shape[-2:])
    assert (top + bottom, left + right) == (3, m - 1) and top <= bottom and left <= right
    with torch.no_grad():
        expected = model.backbone(F.pad(x, (left, right, top, bottom)))[..., top : top + x.shape[-2], left : left + x.shape[-1]]
        assert torch.equal(model.backbone_logits(x), expected)
        assert model(x).shape == (1, 3, 2 * x.shape[-2], 2 * x.shape[-1])


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("head", ["pixelshuffle", "jnet", "jnet-authors"])
def test_scale_8_works_for_every_backbone_and_head_on_the_default_canvas(name, head):
    # 224x192 at x8 is 28x24, not a multiple of 8: this crashed `edgeseg train` before the padding rule
    model = create_model(name, 1, 3, 8, head=head, width=TINY).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 1, 28, 24))
    assert y.shape == (1, 3, 224, 192)
    assert torch.isfinite(y).all()


def test_unknown_model_names_the_known_ones():
    with pytest.raises(EdgesegError) as err:
        create_model("unett")
    message = str(err.value)
    assert "unknown model 'unett'" in message
    assert all(name in message for name in list_models())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", list_models())
def test_onnx_export_matches_torch(name):
    ort = pytest.importorskip("onnxruntime")
    model = get_backbone_class(name)(1, 3, width=TINY).eval()
    with torch.no_grad():  # non-trivial BN statistics, so the folded BN path is exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 1, 56, 48)
    f = io.BytesIO()
    try:
        torch.onnx.export(model, x, f, opset_version=13, dynamo=False, input_names=["x"])
    except TypeError:  # torch without the dynamo switch: the default is the TorchScript exporter
        torch.onnx.export(model, x, f, opset_version=13, input_names=["x"])
    session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(session.run(None, {"x": x.numpy()})[0] - expected).max() < 1e-4
