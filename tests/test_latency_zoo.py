"""Every validation network's MAC count against an independent counter: torchvision's published figures."""
import pytest

from edgeseg.latency import zoo
from edgeseg.latency.predict import simulate

# torchvision model documentation, "GFLOPS" of each ImageNet weight entry at 3x224x224 (torchvision counts
# multiply-accumulates of conv and linear layers, i.e. GMACs), two decimals as published.
TORCHVISION_GMACS = {
    "alexnet": 0.71, "mobilenet_v2": 0.30, "squeezenet1_0": 0.82, "squeezenet1_1": 0.35,
    "resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80, "resnet152": 11.51,
    "densenet121": 2.83, "densenet161": 7.73, "densenet169": 3.36, "densenet201": 4.29,
    "vgg11": 7.61, "vgg13": 11.31, "vgg16": 15.47, "vgg19": 19.63,
    "vgg11_bn": 7.61, "vgg13_bn": 11.31, "vgg16_bn": 15.47, "vgg19_bn": 19.63,
}
# dusty-nv FCN-ResNet18 at 224: torchvision ResNet-18 minus its 512->1000 fc, plus the FCN head computed by hand
# (3x3 512->128 and 1x1 128->21 on the 7x7 stride-32 map)
FCN_GMACS = 1.81 - 512 * 1000 / 1e9 + (7 * 7 * 128 * 512 * 9 + 7 * 7 * 21 * 128) / 1e9


def test_every_zoo_network_has_a_reference():
    assert set(zoo.NETWORKS) == set(TORCHVISION_GMACS) | {"fcn_resnet18"}


@pytest.mark.parametrize("name", sorted(zoo.NETWORKS))
def test_zoo_macs_match_independent_count(name):
    classes = 21 if name == "fcn_resnet18" else 1000
    p = simulate(zoo.build(name, (3, 224, 224), classes), "jetson-nano")
    ref = FCN_GMACS if name == "fcn_resnet18" else TORCHVISION_GMACS[name]
    # 2 %: issue #14's tolerance; the published figures are rounded to 0.01 GMAC (1.4 % of squeezenet1_1's 0.35)
    assert p.macs / 1e9 == pytest.approx(ref, rel=0.02)
    assert p.warnings == () and p.estimated_ops == ()  # no unknown op in any zoo network
