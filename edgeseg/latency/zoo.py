"""The validation networks, rebuilt as ONNX graphs (architecture only, torchvision-style definitions).

Weights are shape-only initializers (dims, no data): the simulator needs shapes, not values, and the
VGGs would otherwise be 0.5 GB each. `build(name, input_chw, num_classes)` returns an onnx.ModelProto.
"""
from __future__ import annotations

from edgeseg.errors import EdgesegError, nearest_key


class Net:
    """A tiny graph builder: each method adds nodes and returns the output tensor name."""

    def __init__(self, name: str, input_chw: tuple[int, int, int]):
        self.name, self.input_chw, self.nodes, self.inits, self.n = name, input_chw, [], [], 0

    def _name(self, kind: str) -> str:
        self.n += 1
        return f"{kind}_{self.n}"

    def _weight(self, *dims: int) -> str:
        from onnx import TensorProto

        t = TensorProto(name=self._name("w"), dims=dims, data_type=TensorProto.FLOAT,
                        data_location=TensorProto.EXTERNAL)
        t.external_data.add(key="location", value="shape-only.bin")
        self.inits.append(t)
        return t.name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        from onnx import helper

        out = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k, s=1, p=0, g=1, bias=True):
        ins = [x, self._weight(cout, cin // g, k, k)] + ([self._weight(cout)] if bias else [])
        return self.op("Conv", ins, kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, group=g)

    def bn(self, x, c):
        return self.op("BatchNormalization", [x] + [self._weight(c) for _ in range(4)])

    def relu(self, x):
        return self.op("Relu", [x])

    def relu6(self, x):
        from onnx import helper, TensorProto

        lo, hi = self._name("min"), self._name("max")  # Clip's bounds: real scalars, not shape-only
        self.inits += [helper.make_tensor(lo, TensorProto.FLOAT, [], [0.0]),
                       helper.make_tensor(hi, TensorProto.FLOAT, [], [6.0])]
        return self.op("Clip", [x, lo, hi])

    def cbr(self, x, cin, cout, k, s=1, p=0, relu=True):
        y = self.bn(self.conv(x, cin, cout, k, s, p, bias=False), cout)
        return self.relu(y) if relu else y

    def cbr_g(self, x, c, s=1):
        """Depthwise 3x3 conv (one channel per group, padding 1) + BN + ReLU."""
        return self.relu(self.bn(self.conv(x, c, c, 3, s, 1, g=c, bias=False), c))

    def resize(self, x, c, hw):
        """Bilinear resize (align_corners) of a 1 x c x H x W tensor to the spatial size hw (torch F.interpolate(size=...))."""
        from onnx import helper, TensorProto

        sizes = self._name("sizes")  # a real int64 tensor, like Clip's bounds: shape inference reads it
        self.inits.append(helper.make_tensor(sizes, TensorProto.INT64, [4], [1, c, *hw]))
        return self.op("Resize", [x, "", "", sizes], mode="linear", coordinate_transformation_mode="align_corners")

    def maxpool(self, x, k, s, p=0, ceil=0):
        return self.op("MaxPool", [x], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, ceil_mode=ceil)

    def avgpool(self, x, k, s):
        return self.op("AveragePool", [x], kernel_shape=[k, k], strides=[s, s])

    def convt(self, x, cin, cout, k, s, p):
        ins = [x, self._weight(cin, cout, k, k), self._weight(cout)]
        return self.op("ConvTranspose", ins, kernel_shape=[k, k], strides=[s, s], pads=[p] * 4)

    def lrn(self, x):
        return self.op("LRN", [x], size=5, alpha=1e-4, beta=0.75, bias=1.0)

    def linear(self, x, cin, cout):
        return self.op("Gemm", [x, self._weight(cout, cin), self._weight(cout)], transB=1)

    def head(self, x, cin, classes):
        return self.linear(self.op("Flatten", [self.op("GlobalAveragePool", [x])]), cin, classes)

    def model(self, *outs: str):
        from onnx import TensorProto, helper

        c, h, w = self.input_chw
        graph = helper.make_graph(self.nodes, self.name,
                                  [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c, h, w])],
                                  [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
                                  self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _resnet_trunk(n: Net, blocks, bottleneck: bool):
    x = n.maxpool(n.cbr("input", 3, 64, 7, 2, 3), 3, 2, 1)
    cin, exp = 64, 4 if bottleneck else 1
    for stage, count in enumerate(blocks):
        width = 64 * 2 ** stage
        for i in range(count):
            s = 2 if (i == 0 and stage > 0) else 1
            if bottleneck:
                y = n.cbr(n.cbr(n.cbr(x, cin, width, 1), width, width, 3, s, 1), width, width * 4, 1, relu=False)
            else:
                y = n.cbr(n.cbr(x, cin, width, 3, s, 1), width, width, 3, 1, 1, relu=False)
            short = n.cbr(x, cin, width * exp, 1, s, relu=False) if (s != 1 or cin != width * exp) else x
            x, cin = n.relu(n.op("Add", [y, short])), width * exp
    return x, cin


def resnet(blocks, bottleneck=False):
    def build(chw, classes):
        n = Net("resnet", chw)
        x, c = _resnet_trunk(n, blocks, bottleneck)
        return n.model(n.head(x, c, classes))
    return build


def fcn_resnet18(chw, classes):
    """dusty-nv FCN-ResNet18: ResNet-18 trunk (stride 32), FCNHead 512->128->classes, no final upsampling."""
    n = Net("fcn_resnet18", chw)
    x, c = _resnet_trunk(n, (2, 2, 2, 2), False)
    return n.model(n.conv(n.op("Dropout", [n.cbr(x, c, 128, 3, 1, 1)]), 128, classes, 1))


def ufld_resnet18(chw, classes):
    """cfzd/Ultra-Fast-Lane-Detection parsingNet (backbone 18, no auxiliary head): ResNet-18 trunk (stride 32), a 1x1
    512->8 `pool` conv, flattened (8 x 9 x 25 = 1800 at 288x800) into Linear 1800->2048 + ReLU -> Linear 2048->classes
    (the culane head: 201 x 18 x 4 = 14472)."""
    n = Net("ufld_resnet18", chw)
    x, c = _resnet_trunk(n, (2, 2, 2, 2), False)
    flat = 8 * (chw[1] // 32) * (chw[2] // 32)
    x = n.op("Flatten", [n.conv(x, c, 8, 1)])
    return n.model(n.linear(n.relu(n.linear(x, flat, 2048)), 2048, classes))


def alexnet(chw, classes):
    n = Net("alexnet", chw)
    x = n.maxpool(n.relu(n.conv("input", 3, 64, 11, 4, 2)), 3, 2)
    x = n.maxpool(n.relu(n.conv(x, 64, 192, 5, 1, 2)), 3, 2)
    for cin, cout in ((192, 384), (384, 256), (256, 256)):
        x = n.relu(n.conv(x, cin, cout, 3, 1, 1))
    x = n.op("Flatten", [n.maxpool(x, 3, 2)])
    x = n.relu(n.linear(n.relu(n.linear(x, 256 * 36, 4096)), 4096, 4096))
    return n.model(n.linear(x, 4096, classes))


VGG = {"vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
       "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
       "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
       "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                 512, 512, 512, 512, "M"]}


def vgg(cfg, batch_norm=False):
    def build(chw, classes):
        n, x, cin = Net("vgg", chw), "input", 3
        for v in VGG[cfg]:
            if v == "M":
                x = n.maxpool(x, 2, 2)
            else:
                y = n.conv(x, cin, v, 3, 1, 1)
                x, cin = n.relu(n.bn(y, v) if batch_norm else y), v
        x = n.relu(n.linear(n.relu(n.linear(n.op("Flatten", [x]), 512 * 49, 4096)), 4096, 4096))
        return n.model(n.linear(x, 4096, classes))
    return build


# SqueezeNet: (stem conv, stem k, stem stride, stages of fire modules (cin, squeeze, expand1x1, expand3x3),
# each stage after the first preceded by a 3x3/2 ceil-mode max pool)
SQUEEZE = {"squeezenet1_0": (96, 7, ((96, 16, 64, 64), (128, 16, 64, 64), (128, 32, 128, 128)),
                             ((256, 32, 128, 128), (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256)),
                             ((512, 64, 256, 256),)),
           "squeezenet1_1": (64, 3, ((64, 16, 64, 64), (128, 16, 64, 64)), ((128, 32, 128, 128), (256, 32, 128, 128)),
                             ((256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), (512, 64, 256, 256)))}


def squeezenet(version):
    def build(chw, classes):
        n = Net(version, chw)
        stem, k, *stages = SQUEEZE[version]

        def fire(x, cin, sq, e1, e3):
            s = n.relu(n.conv(x, cin, sq, 1))
            return n.op("Concat", [n.relu(n.conv(s, sq, e1, 1)), n.relu(n.conv(s, sq, e3, 3, 1, 1))], axis=1)

        x = n.relu(n.conv("input", 3, stem, k, 2))
        for stage in stages:
            x = n.maxpool(x, 3, 2, ceil=1)
            for args in stage:
                x = fire(x, *args)
        x = n.relu(n.conv(x, 512, classes, 1))
        return n.model(n.op("Flatten", [n.op("GlobalAveragePool", [x])]))
    return build


def _densenet_features(n: Net, blocks, growth=32, init=64):
    """torchvision DenseNet `features`: stem, dense blocks and transitions, ending with norm5 (no ReLU)."""
    x = n.maxpool(n.cbr("input", 3, init, 7, 2, 3), 3, 2, 1)
    feats, c = [x], init
    for b, count in enumerate(blocks):
        for _ in range(count):
            cat = n.op("Concat", feats, axis=1) if len(feats) > 1 else feats[0]
            y = n.conv(n.relu(n.bn(cat, c)), c, 4 * growth, 1, bias=False)
            feats.append(n.conv(n.relu(n.bn(y, 4 * growth)), 4 * growth, growth, 3, 1, 1, bias=False))
            c += growth
        x = n.op("Concat", feats, axis=1)
        if b < len(blocks) - 1:
            x = n.avgpool(n.conv(n.relu(n.bn(x, c)), c, c // 2, 1, bias=False), 2, 2)
            feats, c = [x], c // 2
    return n.bn(x, c), c


def densenet(blocks, growth=32, init=64):
    def build(chw, classes):
        n = Net("densenet", chw)
        x, c = _densenet_features(n, blocks, growth, init)
        return n.model(n.head(n.relu(x), c, classes))
    return build


# MobileNet-V2 1.0 (torchvision / the ONNX model zoo's mobilenetv2-1.0): inverted residual blocks
# (expansion t, output channels c, repeats n, first stride s)
MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))


def mobilenet_v2(chw, classes):
    n = Net("mobilenet_v2", chw)
    cbr6 = lambda x, cin, cout, k, s=1, g=1: n.relu6(n.bn(n.conv(x, cin, cout, k, s, k // 2, g, bias=False), cout))  # noqa: E731
    x, cin = cbr6("input", 3, 32, 3, 2), 32
    for t, c, reps, s in MOBILENET_V2:
        for i in range(reps):
            hidden, stride = cin * t, s if i == 0 else 1
            y = cbr6(x, cin, hidden, 1) if t != 1 else x
            y = cbr6(y, hidden, hidden, 3, stride, g=hidden)
            y = n.bn(n.conv(y, hidden, c, 1, bias=False), c)
            x, cin = (n.op("Add", [x, y]) if stride == 1 and cin == c else y), c
    x = n.op("Dropout", [n.op("Flatten", [n.op("GlobalAveragePool", [cbr6(x, cin, 1280, 1)])])])
    return n.model(n.linear(x, 1280, classes))


# BVLC GoogLeNet (Caffe deploy.prototxt, the model of jkjung-avt/tensorrt_demos): inception modules
# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection); a 3x3/2 ceil-mode max pool before 3a, 4a and 5a
GOOGLENET = (((192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64)),
             ((480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64), (512, 128, 128, 256, 24, 64, 64),
              (512, 112, 144, 288, 32, 64, 64), (528, 256, 160, 320, 32, 128, 128)),
             ((832, 256, 160, 320, 32, 128, 128), (832, 384, 192, 384, 48, 128, 128)))


def googlenet(chw, classes):
    """BVLC GoogLeNet with its two LRNs and the final softmax (`prob`), no auxiliary classifiers (deploy graph)."""
    n = Net("googlenet", chw)

    def inception(x, cin, c1, c3r, c3, c5r, c5, pool):
        b3 = n.relu(n.conv(n.relu(n.conv(x, cin, c3r, 1)), c3r, c3, 3, 1, 1))
        b5 = n.relu(n.conv(n.relu(n.conv(x, cin, c5r, 1)), c5r, c5, 5, 1, 2))
        bp = n.relu(n.conv(n.maxpool(x, 3, 1, 1), cin, pool, 1))
        return n.op("Concat", [n.relu(n.conv(x, cin, c1, 1)), b3, b5, bp], axis=1)

    x = n.lrn(n.maxpool(n.relu(n.conv("input", 3, 64, 7, 2, 3)), 3, 2, ceil=1))
    x = n.lrn(n.relu(n.conv(n.relu(n.conv(x, 64, 64, 1)), 64, 192, 3, 1, 1)))
    for stage in GOOGLENET:
        x = n.maxpool(x, 3, 2, ceil=1)
        for args in stage:
            x = inception(x, *args)
    x = n.op("Flatten", [n.op("Dropout", [n.op("GlobalAveragePool", [x])])])
    return n.model(n.op("Softmax", [n.linear(x, 1024, classes)], axis=1))


# trt_pose (NVIDIA-AI-IOT/trt_pose, models/common.py CmapPafHeadAttention): human_pose.json has 18 keypoints
# (the cmap channels, passed as num_classes) and 21 links, two PAF channels each
TRTPOSE_PAF, TRTPOSE_UP = 42, 256


def _trtpose_head(n: Net, x, cin, cmap):
    """Two branches of three ConvTranspose 4x4/2 + BN + ReLU; a 3x3 attention conv (sigmoid for the part maps,
    tanh for the affinity fields) multiplies each branch before its 1x1 output conv."""
    outs = []
    for act, cout in (("Sigmoid", cmap), ("Tanh", TRTPOSE_PAF)):
        y, c = x, cin
        for _ in range(3):
            y, c = n.relu(n.bn(n.convt(y, c, TRTPOSE_UP, 4, 2, 1), TRTPOSE_UP)), TRTPOSE_UP
        att = n.op(act, [n.conv(y, c, c, 3, 1, 1)])
        outs.append(n.conv(n.op("Mul", [y, att]), c, cout, 1))
    return outs


def trtpose(trunk: str):
    def build(chw, classes):
        n = Net(f"trtpose_{trunk}", chw)
        x, c = _resnet_trunk(n, (2, 2, 2, 2), False) if trunk == "resnet18" else _densenet_features(n, (6, 12, 24, 16))
        return n.model(*_trtpose_head(n, x, c, classes))
    return build


# Fast-SCNN (Tramac/Fast-SCNN-pytorch, the model of PINTO_model_zoo 228_Fast-SCNN; no auxiliary head): MobileNet-V2
# bottlenecks of the global feature extractor (input channels, output channels, first stride; 3 blocks each, t = 6)
FASTSCNN_BLOCKS = ((64, 64, 2), (64, 96, 2), (96, 128, 1))
FASTSCNN_PPM = (1, 2, 3, 6)  # pyramid pooling bins


def fastscnn(chw, classes):
    """Fast-SCNN: learning to downsample (3x3/2 conv without padding, two depthwise-separable convs /2), 9 bottlenecks,
    pyramid pooling (average pools to 1, 2, 3, 6 bins, 1x1 128->32 each, bilinear back, concat 256 -> 1x1 128), feature
    fusion (the 1/32 branch upsampled x4, depthwise 3x3 + 1x1, added to a 1x1 of the 1/8 branch, ReLU), two
    depthwise-separable convs, a 1x1 to the classes and a bilinear upsampling to the input size."""
    n = Net("fastscnn", chw)
    out = lambda v, s, k=3, p=1: (v + 2 * p - k) // s + 1  # noqa: E731  a conv's output side
    dw = lambda x, c, s=1: n.cbr_g(x, c, s)  # noqa: E731

    def dsconv(x, cin, cout, s, h, w):
        return n.cbr(dw(x, cin, s), cin, cout, 1), out(h, s), out(w, s)

    x, h, w = n.cbr("input", 3, 32, 3, 2, 0), out(chw[1], 2, p=0), out(chw[2], 2, p=0)
    x, h, w = dsconv(x, 32, 48, 2, h, w)
    high, hh, hw = dsconv(x, 48, 64, 2, h, w)
    x, h, w = high, hh, hw
    for cin, cout, s in FASTSCNN_BLOCKS:
        for i in range(3):
            c, stride = (cin, s) if i == 0 else (cout, 1)
            y = n.bn(n.conv(dw(n.cbr(x, c, 6 * c, 1), 6 * c, stride), 6 * c, cout, 1, bias=False), cout)
            x, h, w = (n.op("Add", [x, y]) if stride == 1 and c == cout else y), out(h, stride), out(w, stride)
    feats = [x]
    for bins in FASTSCNN_PPM:
        if h % bins or w % bins:
            raise EdgesegError(f"fastscnn: the {h}x{w} map does not divide into {bins} pooling bins")
        pooled = n.op("AveragePool", [x], kernel_shape=[h // bins, w // bins], strides=[h // bins, w // bins])
        feats.append(n.resize(n.cbr(pooled, 128, 32, 1), 32, (h, w)))
    x = n.cbr(n.op("Concat", feats, axis=1), 256, 128, 1)
    low = n.bn(n.conv(dw(n.resize(x, 128, (hh, hw)), 128), 128, 128, 1), 128)
    x = n.relu(n.op("Add", [n.bn(n.conv(high, 64, 128, 1), 128), low]))
    for _ in range(2):
        x, _, _ = dsconv(x, 128, 128, 1, hh, hw)
    return n.model(n.resize(n.conv(n.op("Dropout", [x]), 128, classes, 1), classes, chw[1:]))


NETWORKS = {
    "fcn_resnet18": fcn_resnet18, "alexnet": alexnet, "mobilenet_v2": mobilenet_v2,
    "squeezenet1_0": squeezenet("squeezenet1_0"), "squeezenet1_1": squeezenet("squeezenet1_1"),
    "resnet18": resnet((2, 2, 2, 2)), "resnet34": resnet((3, 4, 6, 3)), "resnet50": resnet((3, 4, 6, 3), True),
    "resnet101": resnet((3, 4, 23, 3), True), "resnet152": resnet((3, 8, 36, 3), True),
    "densenet121": densenet((6, 12, 24, 16)), "densenet169": densenet((6, 12, 32, 32)),
    "densenet201": densenet((6, 12, 48, 32)), "densenet161": densenet((6, 12, 36, 24), growth=48, init=96),
    "googlenet": googlenet, "trtpose_resnet18_att": trtpose("resnet18"), "trtpose_densenet121_att": trtpose("densenet121"),
    "ufld_resnet18": ufld_resnet18, "fastscnn": fastscnn,
    **{name: vgg(name) for name in VGG}, **{f"{name}_bn": vgg(name, batch_norm=True) for name in VGG},
}


def build(name: str, input_chw: tuple[int, int, int] = (3, 224, 224), num_classes: int = 1000):
    """An onnx.ModelProto of the named network (torchvision.* prefixes accepted)."""
    name = name.removeprefix("torchvision.")
    if name not in NETWORKS:
        raise EdgesegError(f"unknown validation network '{name}'{nearest_key(name, NETWORKS)}")
    return NETWORKS[name](tuple(input_chw), num_classes)
