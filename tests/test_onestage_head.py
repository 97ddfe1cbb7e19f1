"""The one-stage head (cascade ablation): parameter count, outputs, gradients, ONNX opset 13 through ORT, Nano check."""
import io

import numpy as np
import pytest
import torch

from edgeseg.models import create_model, get_head_class, list_heads


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("classes, scale, expected", [(2, 2, 46), (2, 4, 70), (2, 8, 166), (3, 8, 276)])
def test_parameter_count(classes, scale, expected):
    # onestage_head.py: C*scale^2 + 9C^2 + C; the binary task's x8 head stays under the 200 budget
    assert "onestage" in list_heads()
    assert n_params(get_head_class("onestage")(classes, scale)) == expected
    if classes == 2:
        assert expected < 200


def test_one_step_to_full_resolution_and_pyramid_has_no_intermediate_scale():
    h = get_head_class("onestage")(2, 8).eval()
    logits = torch.randn(2, 2, 3, 5)
    outs = h.pyramid(logits)
    assert [tuple(o.shape) for o in outs] == [(2, 2, 3, 5), (2, 2, 24, 40)]
    assert outs[0] is logits and torch.equal(h(logits), outs[-1])
    # a change of one low-res logit reaches only its 8x8 block plus the 3x3's one-pixel rim
    bumped = logits.clone()
    bumped[0, 1, 1, 2] += 1.0
    with torch.no_grad():
        diff = (h(bumped) - h(logits)).abs().sum(dim=(0, 1))
    rows, cols = torch.nonzero(diff > 1e-6, as_tuple=True)
    assert rows.min() >= 7 and rows.max() <= 16 and cols.min() >= 15 and cols.max() <= 24


def test_every_head_parameter_gets_a_gradient_under_deep_supervision():
    from edgeseg.train.supervision import deep_supervision_loss, resolve_supervision

    model = create_model("unet", 1, 2, 8, head="onestage", width=2).train()
    assert resolve_supervision("auto", model) == "deep"
    x = torch.randn(2, 1, 4, 4)
    deep_supervision_loss(model.pyramid(x), torch.randint(0, 2, (2, 32, 32))).backward()
    for name, p in model.sr_head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_opset13_parity_and_nano_check_at_x8(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from edgeseg.cli import main
    from edgeseg.export.check import check_model, errors, load_target

    model = create_model("unet", 1, 2, 8, head="onestage", width=2).eval()
    x = torch.randn(1, 1, 28, 24)  # 224x192 at x8, padded inside to the backbone's multiple
    f = io.BytesIO()
    try:
        torch.onnx.export(model, x, f, opset_version=13, dynamo=False, input_names=["x"])
    except TypeError:  # torch without the dynamo switch
        torch.onnx.export(model, x, f, opset_version=13, input_names=["x"])
    proto = onnx.load_from_string(f.getvalue())
    assert "DepthToSpace" in {n.op_type for n in proto.graph.node}
    assert not errors(check_model(proto, load_target("jetson-nano")))
    got = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).numpy()
    assert got.shape == (1, 2, 224, 192)
    assert np.abs(got - expected).max() < 1e-4  # FP32 torch vs ORT
    path = tmp_path / "onestage.onnx"
    path.write_bytes(f.getvalue())
    assert main(["check", str(path), "--target", "jetson-nano"]) == 0
