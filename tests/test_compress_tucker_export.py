"""Tucker-2 exactness and parameter counts; every compressed tiny model exports and runs in ONNX Runtime."""
import numpy as np
import pytest
import torch
from torch import nn

from edgeseg.compress.tucker import decompose_conv, decompose_model, decomposed_params, tucker2


def _conv(cin=6, cout=10, k=3, **kw):
    torch.manual_seed(0)
    return nn.Conv2d(cin, cout, k, padding=1, **kw)


def test_tucker_full_rank_reconstructs_the_conv():
    conv = _conv(stride=2)
    new = decompose_conv(conv, ranks=(10, 6), hooi_iters=1)
    assert new is None  # full rank has more parameters than the conv: skipped ...
    core, u_out, u_in = tucker2(conv.weight, 10, 6, hooi_iters=1)
    w = torch.einsum("rskl,or,is->oikl", core, u_out, u_in)
    assert torch.allclose(w.float(), conv.weight, atol=1e-6)  # ... but the factors are exact


def test_tucker_full_rank_output_matches_when_built():
    conv = _conv(cin=8, cout=8, stride=2)
    new = decompose_conv(conv, ranks=(8, 8), force=True)  # built although it saves nothing: checks the wiring
    x = torch.randn(2, 8, 12, 12)
    assert (new(x) - conv(x)).abs().max() < 1e-5


def test_tucker_transposed_conv_full_rank():
    torch.manual_seed(0)
    conv = nn.ConvTranspose2d(6, 5, 2, stride=2)
    new = decompose_conv(conv, ranks=(5, 6), force=True)
    x = torch.randn(1, 6, 7, 7)
    assert (new(x) - conv(x)).abs().max() < 1e-5


def test_parameter_count_at_a_given_rank():
    conv = _conv(cin=16, cout=32)
    new = decompose_conv(conv, ranks=(8, 4))
    # 1x1 16->4, 3x3 core 4->8, 1x1 8->32 with bias
    assert sum(p.numel() for p in new.parameters()) == 16 * 4 + 4 * 8 * 9 + 8 * 32 + 32
    assert decomposed_params(32, 16, 9, 8, 4, True) == 16 * 4 + 4 * 8 * 9 + 8 * 32 + 32
    assert [m.kernel_size for m in new] == [(1, 1), (3, 3), (1, 1)] and new[1].padding == (1, 1)


def test_df_rank_rule_and_skips():
    from edgeseg.models import create_model

    model = create_model("unet", 1, 3, 2, sr_head=True, width=8)
    records = decompose_model(model, df=0.5, min_rank=4)
    by = {r["layer"]: r for r in records}
    assert by["backbone.bottom.0.0"]["ranks"] == [32, 16]  # ceil(64*0.5), ceil(32*0.5)
    assert not by["sr_head.refine"]["decomposed"] and by["sr_head.refine"]["why"] == "grouped"
    assert not by["backbone.classifier"]["decomposed"]  # 8 -> 3, 1x1: nothing to gain
    assert by["backbone.classifier"]["why"] == "no parameter saving"



def test_rank_multiple_rounds_ranks_up_and_keeps_the_skips():
    from edgeseg.compress.registry import make_scheme
    from edgeseg.errors import EdgesegError
    from edgeseg.models import create_model

    records = make_scheme({"name": "tucker", "df": 0.3, "rank_multiple": 8}).apply(create_model("unet", 1, 3, 2, width=8), (1, 1, 16, 16))
    by = {r["layer"]: r for r in records}
    assert by["backbone.bottom.1.0"]["ranks"] == [24, 24]  # ceil(64 * 0.3) = 20 -> 24
    assert by["backbone.dec.0.0.0"]["ranks"] == [16, 32]  # 96 -> 32 (29 -> 32), 32 -> 16 (10 -> 16)
    assert by["backbone.enc.1.0.0"]["ranks"] == [8, 8]  # 16 -> 8 (5 -> 8), 8 in: capped at C
    assert not by["backbone.enc.0.1.0"]["decomposed"]  # 8 -> 8 at rank 8: no parameter saving
    assert all(r % 8 == 0 for rec in records if rec["decomposed"] for r in rec["ranks"])
    plain = {r["layer"]: r for r in decompose_model(create_model("unet", 1, 3, 2, width=8), df=0.3)}
    assert plain["backbone.bottom.1.0"]["ranks"] == [20, 20] and plain["backbone.enc.0.1.0"]["decomposed"]  # default: Weber's rule
    with pytest.raises(EdgesegError, match="rank_multiple"):
        make_scheme({"name": "tucker", "rank_multiple": 0})


def _tiny_contract():
    from edgeseg.contract import ModelContract

    return ModelContract(model_name="unet", class_names=("bg", "a", "b"), label_values=(0, 1, 2), scale=2,
                         hr_size=(32, 32), input_shape=(1, 1, 16, 16))


@pytest.mark.parametrize("table", [{"name": "fixedpoint", "weight_bits": 4, "act_bits": 6}, {"name": "ternary"},
                                   {"name": "binary"}, {"name": "fixedpoint", "weight_bits": 2, "act_bits": 4, "pow2": True},
                                   {"name": "ternary", "act_at": "relu"}])
def test_quantized_tiny_model_runs_in_onnxruntime(table, tmp_path):
    from edgeseg.compress.export_compressed import export_qdq, int4_weights
    from edgeseg.compress.registry import make_scheme
    from edgeseg.export.simplify import ort_session
    from edgeseg.models import create_model

    torch.manual_seed(0)
    model = create_model("unet", 1, 3, 2, sr_head=True, width=2).eval()
    for m in model.modules():  # non-trivial BN, so that folding it is tested
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(-1.5, 1.5)
    scheme = make_scheme(table)
    scheme.apply(model, (1, 1, 16, 16))
    x = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    scheme.calibrate(model, [x])
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    path = export_qdq(model, _tiny_contract(), tmp_path / "m.onnx")
    int4 = tmp_path / "m4.onnx"
    int4_weights(path, int4)
    # ORT 1.32's QDQ propagation across MaxPool breaks on opset-21 signed activations (act_at = "relu"): opset 13 only
    for p in (path,) if table.get("act_at") == "relu" else (path, int4):
        s = ort_session(p)
        out = np.concatenate([s.run(None, {"image_lowres": x[i: i + 1].numpy()})[0] for i in range(3)])
        # tolerance: float reordering (BN folded into the scale) may move a value across a rounding step
        assert np.abs(out - ref).max() < 2e-2 * np.abs(ref).max()
        assert np.mean(out.argmax(1) == ref.argmax(1)) > 0.99


def test_tucker_tiny_model_exports_fp32_and_int8(tmp_path):
    from edgeseg.compress.export_compressed import ort_predict
    from edgeseg.export.quantize import quantize_int8
    from edgeseg.export.recipe import QuantizeConfig
    from edgeseg.export.simplify import ort_session
    from edgeseg.export.to_onnx import export_onnx
    from edgeseg.models import create_model

    torch.manual_seed(0)
    model = create_model("unet", 1, 3, 2, sr_head=True, width=4).eval()
    assert any(r["decomposed"] for r in decompose_model(model, df=0.5, min_rank=2))
    x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    path = export_onnx(model, _tiny_contract(), tmp_path / "t.onnx", 13)
    out = np.concatenate([ort_session(path).run(None, {"image_lowres": x[i: i + 1].numpy()})[0] for i in range(4)])
    with torch.no_grad():
        assert np.abs(out - model(x).numpy()).max() < 1e-4
    quantize_int8(path, tmp_path / "t8.onnx", x.numpy(), QuantizeConfig(), tmp_path)
    import onnx

    graph = onnx.load(str(tmp_path / "t8.onnx")).graph
    convs = [n for n in graph.node if n.op_type in ("Conv", "ConvTranspose")]
    quantized_inputs = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    # every decomposed 1x1/3x3/1x1 conv is quantized: its weight (and input) come through DequantizeLinear
    assert len(convs) >= 3 and all(any(i in quantized_inputs for i in c.input) for c in convs)
    labels = ort_predict(tmp_path / "t8.onnx", x.numpy()[:, 0])
    assert labels.shape == (4, 32, 32)
    # INT8 changes few decisions of the FP32 graph on its own calibration inputs (random weights; measured: all of them)
    assert np.mean(labels == out.argmax(1)) > 0.97  # measured 1.0
