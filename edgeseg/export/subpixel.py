"""Sub-pixel upsampling for ONNX Runtime's CPU provider: grouped 1x1 Conv + DepthToSpace -> one ConvTranspose.

The SR head's x2 stage is a depthwise 2x2 transposed conv stored as a grouped 1x1 conv to b*b sub-pixels
followed by DepthToSpace (CRD, PixelShuffle's order). TensorRT runs that pair natively (its grouped
deconvolutions are loop-based and reported slow), so the export writes it. ONNX Runtime's CPU provider runs
one depthwise ConvTranspose faster than the pair (`edgeseg bench int8-cpu`), so the files a target runs there
(`ort_cpu_files` of edgeseg/export/targets/*.toml) get this rewrite. The weights are the same numbers:
sub-pixel (i, j) of channel k is output channel k*b*b + i*b + j of the grouped conv.
"""
from __future__ import annotations

from pathlib import Path


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _match(conv, d2s, weight) -> int:
    """C (the channels) when conv -> d2s is a bias-free depthwise sub-pixel pair, else 0."""
    a, d = _attrs(conv), _attrs(d2s)
    b = d.get("blocksize", 0)
    mode = d.get("mode", b"DCR")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    c = a.get("group", 1)
    plain = all(v == 1 for v in a.get("strides", [1, 1]) + a.get("dilations", [1, 1])) and not any(a.get("pads", [0] * 4))
    if len(conv.input) > 2 and conv.input[2] or mode != "CRD" or b < 2 or not plain:
        return 0
    if weight.ndim != 4 or weight.shape[1:] != (1, 1, 1) or weight.shape[0] != c * b * b:
        return 0
    return c


def to_conv_transpose(src: str | Path, dst: str | Path) -> int:
    """Rewrite every depthwise sub-pixel pair of `src` into a ConvTranspose and write `dst` (checked); returns
    how many pairs were rewritten (0: `dst` is a copy)."""
    import onnx
    from onnx import numpy_helper

    from edgeseg.export.validate import save_checked

    model = onnx.load(str(src))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in g.output}
    rewritten, drop, new_nodes = 0, set(), {}
    for conv in g.node:
        users = consumers.get(conv.output[0], []) if conv.op_type == "Conv" else []
        if len(users) != 1 or users[0].op_type != "DepthToSpace" or conv.output[0] in outputs or conv.input[1] not in inits:
            continue
        d2s, w = users[0], numpy_helper.to_array(inits[conv.input[1]])
        c = _match(conv, d2s, w)
        if not c:
            continue
        b = _attrs(d2s)["blocksize"]
        name = f"{conv.input[1]}_transposed"
        g.initializer.append(numpy_helper.from_array(w.reshape(c, 1, b, b), name))
        new_nodes[id(conv)] = onnx.helper.make_node(
            "ConvTranspose", [conv.input[0], name], [d2s.output[0]], name=d2s.name.rsplit("/", 1)[0] + "/ConvTranspose",
            group=c, kernel_shape=[b, b], strides=[b, b])
        drop.add(id(d2s))
        rewritten += 1
    nodes = [new_nodes.get(id(n), n) for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    kept_info = [v for v in g.value_info if v.name in used or v.name in outputs]
    del g.value_info[:]
    g.value_info.extend(kept_info)
    save_checked(model, dst)
    return rewritten
