"""Device profiles: loading, validation errors, precision rules (INT8 on the Nano), simulate() edge cases."""
import pytest
from onnx import helper

from edgeseg.errors import EdgesegError
from edgeseg.latency.device import known_devices, list_devices, load_device
from edgeseg.latency.predict import simulate
from latency_helpers import conv_bn_relu, model

GOOD = """name = "toy"
title = "toy board"
memory_gb = 1.0
default_backend = "cpu"
[backends.cpu]
processor = "one core"
bandwidth_gbs = 1.0
[backends.cpu.precisions]
fp32 = { peak_gflops = 10.0 }
fp16 = { runs_as = "fp32", note = "no fp16" }
[backends.cpu.efficiency]
conv3x3 = 0.5
conv = 0.5
depthwise = 0.1
gemm = 0.5
activation = 0.1
resize = 0.1
other = 0.1
memory = 0.5
concat = 1.0
launch_us = 5.0
saturation = 100.0
tile_channels = 8.0
uncertainty = 0.3
"""


def test_all_shipped_profiles_load():
    assert {"jetson-nano", "jetson-orin-nano", "raspberry-pi-4", "raspberry-pi-5", "host"} <= set(known_devices())
    nano = load_device("jetson-nano")
    trt = nano.backend("trt")
    assert trt.bandwidth_gbs == 25.6 and trt.precisions["fp16"].peak_gflops == pytest.approx(471.9)
    assert nano.memory_gb == 4.0 and "ort-cpu" in nano.backends
    assert all(d.sources for d in list_devices())


def test_profile_from_path(tmp_path):
    (tmp_path / "toy.toml").write_text(GOOD)
    assert load_device(str(tmp_path / "toy.toml")).backend(None).name == "cpu"


@pytest.mark.parametrize("old, new, key", [
    ("bandwidth_gbs = 1.0\n", "", "backends.cpu.bandwidth_gbs"),
    ("memory = 0.5\n", "memory = -1\n", "backends.cpu.efficiency.memory"),
    ('fp16 = { runs_as = "fp32"', 'fp16 = { runs_as = "int8"', "backends.cpu.precisions.fp16.runs_as"),
    ('default_backend = "cpu"', 'default_backend = "gpu"', "default_backend"),
    ("memory = 0.5\n", "memory = 0.5\nmemroy = 0.5\n", "backends.cpu.efficiency.memroy"),  # unknown key, by name
    ("bandwidth_gbs = 1.0\n", "bandwidth_gbs = 1.0\nwinograd_gain = 9\n", "backends.cpu.winograd_gain"),
    ('memory_gb = 1.0', 'memory_gb = 1.0\nmemory_gib = 1.0', "memory_gib"),
])
def test_malformed_profile_names_file_and_key(tmp_path, old, new, key):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(old, new))
    with pytest.raises(EdgesegError) as err:
        load_device(str(path))
    assert "bad.toml" in str(err.value) and key in str(err.value)


def test_unknown_device_lists_known():
    with pytest.raises(EdgesegError, match="known: .*jetson-nano"):
        load_device("jetson-nanoo")


def test_int8_on_nano_runs_fp16(tmp_path):
    p = simulate(conv_bn_relu(), "jetson-nano", "int8")
    assert p.precision == "fp16" and p.requested_precision == "int8"
    assert any("runs as FP16" in w for w in p.warnings)
    fp16 = simulate(conv_bn_relu(), "jetson-nano", "fp16")
    assert p.total_ms == pytest.approx(fp16.total_ms)


def test_int8_on_a57_no_faster_than_fp32():
    p8 = simulate(conv_bn_relu((1, 64, 56, 56), 64), "jetson-nano", "int8", backend="ort-cpu")
    p32 = simulate(conv_bn_relu((1, 64, 56, 56), 64), "jetson-nano", "fp32", backend="ort-cpu")
    assert p8.precision == "int8" and any("dot-product" in w for w in p8.warnings)
    assert p8.layers[0].compute_s == pytest.approx(p32.layers[0].compute_s)  # same arithmetic speed
    assert p8.layers[0].memory_s == pytest.approx(p32.layers[0].memory_s / 4)  # only bytes shrink


def test_prediction_fields():
    p = simulate(conv_bn_relu(), "jetson-nano")
    assert p.precision == "fp16" and p.kernels == 1 and p.band_ms[0] < p.total_ms < p.band_ms[1]
    assert p.fps == pytest.approx(1000 / p.total_ms)
    assert p.weights_bytes == (16 * 8 * 9 + 4 * 16) * 2
    assert p.peak_activation_bytes == (800 + 1600) * 2  # input and output alive together
    assert p.device_memory_bytes == 4 * 2**30


def test_unknown_op_still_predicts_and_is_flagged():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("FooBar", ["r"], ["y"], domain="com.example")]
    p = simulate(model(nodes, {"x": [1, 4, 8, 8]}, extra_opsets=["com.example"]), "jetson-nano")
    assert p.total_ms > 0 and p.estimated_ops == ("FooBar",)
    assert any("FooBar" in w and "estimate" in w for w in p.warnings)


def test_dynamic_shape_needs_input_shape():
    m = model([helper.make_node("Relu", ["x"], ["y"])], {"x": ["N", 3, 8, 8]})
    with pytest.raises(EdgesegError, match="--input-shape"):
        simulate(m, "jetson-nano")
    assert simulate(m, "jetson-nano", input_shape=(1, 3, 8, 8)).input_shape == (1, 3, 8, 8)


SESSION9_ROWS = {"tkupek_mobilenetv2_7_trtexec"}  # held-out rows added in session 9


def test_validation_errors_of_stored_nano_profile():
    import statistics

    from edgeseg.latency.fit import load_rows, prepare, validation_rows

    rows = validation_rows(load_device("jetson-nano"), prepare(load_rows()))
    fit = [abs(r["error"]) for r in rows if r["split"] == "fit"]
    held = [abs(r["error"]) for r in rows if r["split"] == "held-out"]
    session8 = [abs(r["error"]) for r in rows if r["split"] == "held-out" and r["id"] not in SESSION9_ROWS]
    # what the stored multi-start fit reaches (docs/BENCHMARKS.md, latency-validation, session 10, 8 free parameters
    # for 28 fit rows: fit median 2.7 / max 19.3 %, held-out 11.2 / 27.3 % on the 10 session-8 rows) with margin
    assert statistics.median(fit) <= 5 and max(fit) <= 23
    assert statistics.median(session8) <= 14 and max(session8) <= 31
    # all 11 held-out rows (session 9 added MobileNet-V2, +4.6 % now that depthwise is fitted on the Fast-SCNN rows):
    # median 7.7 % / max 27.3 %, inside issue #14's targets (10 / 30 %), which are asserted as they stand
    assert statistics.median(held) <= 10 and max(held) <= 30
    assert {r["family"] for r in rows if r["split"] == "held-out"}.isdisjoint(
        {r["family"] for r in rows if r["split"] == "fit"})  # held out by network family


def test_stored_trt_profile_is_physical():
    from edgeseg.latency.fit import LAUNCH_CEIL_US, LAUNCH_FLOOR_US, TRT_FIT, load_rows

    trt = load_device("jetson-nano").backend("trt")
    e = trt.efficiency
    for name in ("conv3x3", "conv", "depthwise", "gemm", "activation", "resize", "other", "memory"):
        assert 0 < getattr(e, name) <= 1, name  # a fraction of the nominal peak / datasheet bandwidth
    assert trt.bandwidth_gbs * e.memory <= 25.6  # shared/jetson/hardware.md: 25.6 GB/s LPDDR4
    # the measured per-layer host cost (fit.py names the sources), a floor under each kernel: TensorRT enqueues ahead
    assert LAUNCH_FLOOR_US <= e.launch_us <= LAUNCH_CEIL_US <= 60 and trt.launch_overlaps
    assert 2048 <= e.saturation <= 65536 and e.concat == 0
    assert 0 <= e.inference_us <= 2000 and trt.winograd_gain == 2.25
    for name, (lo, hi) in TRT_FIT.items():
        value = getattr(e, name.split("+")[0])
        assert lo <= value <= hi, name
        assert all(getattr(e, part) == value for part in name.split("+"))  # tied fields share one value
    fit_rows = sum(r.split == "fit" for r in load_rows())
    assert 3 * len(TRT_FIT) <= fit_rows  # issue #14: no more free parameters than a third of the fit rows
