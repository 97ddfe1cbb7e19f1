"""The schemes of the papers, each a small class over the machinery in qat/ternary/ternarynet/tucker."""
from __future__ import annotations

from dataclasses import dataclass, field

from edgeseg.compress import qat
from edgeseg.compress.fake_quant import ActFakeQuant, WeightFakeQuant, check_bits


class Scheme:
    name = ""
    export_kind = "qdq"  # qdq: fake-quant folded into QuantizeLinear/DequantizeLinear; float: plain ONNX

    def __init__(self, params):
        self.params = params

    def label(self) -> str:
        return self.name

    def rebuild(self, model, input_shape, records) -> None:
        self.apply(model, input_shape)

    def calibrate(self, model, batches) -> None:
        qat.calibrate(model, batches)

    def on_epoch(self, model, epoch: int, epochs: int) -> None:
        pass

    def scratch_init(self, model, records) -> None:
        """Before training from scratch: re-initialise what `apply` built from the random weights (default: nothing)."""


@dataclass(frozen=True)
class FloatParams:
    pass


class Float(Scheme):
    """No compression: the FP32 control of a from-scratch comparison (same width and protocol)."""

    name = "float"
    Params = FloatParams
    export_kind = "float"

    def label(self) -> str:
        return "FP32"

    def apply(self, model, input_shape) -> list[dict]:
        return []

    def calibrate(self, model, batches) -> None:
        pass


@dataclass(frozen=True)
class FixedPointParams:
    weight_bits: int = 4
    act_bits: int = 8
    pow2: bool = False            # power-of-two scales (strict fixed point) instead of float scales
    per_layer: bool = False       # one weight scale per layer (a Q-format per layer) instead of per output channel
    keep_first_last: bool = True  # first conv and classifier stay float (both papers)
    quantize_head: bool = False   # the SR head (< 200 params) stays float unless true
    layers: dict[str, str] = field(default_factory=dict)  # glob -> "float" | "w4a8"

    def __post_init__(self):
        check_bits(self.weight_bits, "weight")
        check_bits(self.act_bits, "activation")


class FixedPoint(Scheme):
    """Uniform fixed-point QAT (Perone et al.; Xu et al. use it as a regulariser)."""

    name = "fixedpoint"
    Params = FixedPointParams

    def label(self) -> str:
        return f"W{self.params.weight_bits}A{self.params.act_bits}"

    def apply(self, model, input_shape) -> list[dict]:
        p = self.params
        plan = qat.plan_layers(model, input_shape, (p.weight_bits, p.act_bits), p.keep_first_last, p.quantize_head, p.layers)
        qat.swap_convs(model, plan, lambda name, s: (WeightFakeQuant(s[0], p.pow2, p.per_layer), ActFakeQuant(s[1], p.pow2)))
        return [{"layer": n, "weight_bits": s[0], "act_bits": s[1]} for n, s in plan.items()]


@dataclass(frozen=True)
class PeroneParams(FixedPointParams):
    pow2: bool = True
    per_layer: bool = True


class PeroneFixedPoint(FixedPoint):
    """Perone et al.'s fixed point: power-of-two scales, one Q-format per layer for the weights
    (Q(m).(b-1-m) with m from the layer's largest weight) and per tensor for the activations."""

    name = "perone"
    Params = PeroneParams

    def label(self) -> str:
        return f"Q W{self.params.weight_bits}A{self.params.act_bits}"


@dataclass(frozen=True)
class TernaryParams:
    beta_start: float = 3.0   # slope of the tanh continuation at the first fine-tune epoch
    beta_end: float = 8.0     # ... and at the last; eval always uses the hard step
    keep_first_last: bool = True
    quantize_head: bool = False
    act_at: str = "input"     # "input": each quantized conv's input; "relu": replace the backbone's ReLUs (BN -> tt)
    bn_reestimate: bool = False  # after fine-tuning, recompute BN statistics with the hard activations

    def __post_init__(self):
        if not 0 < self.beta_start <= self.beta_end:
            raise ValueError("need 0 < beta_start <= beta_end")
        if self.act_at not in ("input", "relu"):
            raise ValueError(f"act_at must be 'input' or 'relu', not '{self.act_at}'")


class Ternary(Scheme):
    """TernaryNet: ternary weights and activations, tanh continuation towards the step."""

    name = "ternary"
    Params = TernaryParams

    def _quantizers(self):
        from edgeseg.compress.ternary import TernaryAct, TernaryWeight

        return TernaryWeight(), TernaryAct(self.params.beta_start)

    def apply(self, model, input_shape) -> list[dict]:
        from torch import nn

        p = self.params
        plan = qat.plan_layers(model, input_shape, True, p.keep_first_last, p.quantize_head)
        relu = p.act_at == "relu"
        qat.swap_convs(model, plan, lambda name, s: (self._quantizers()[0], None if relu else self._quantizers()[1]))
        records = [{"layer": n} for n in plan]
        if relu:  # TernaryNet's placement: the activation function itself becomes the ternary step (signed)
            for name, m in list(model.named_modules()):
                if name.startswith("backbone.") and type(m) in (nn.ReLU, nn.ReLU6):
                    parent, _, child = name.rpartition(".")
                    setattr(model.get_submodule(parent), child, self._quantizers()[1])
                    records.append({"activation": name})
        return records

    def on_epoch(self, model, epoch: int, epochs: int) -> None:
        from edgeseg.compress.ternary import beta_schedule, set_beta

        set_beta(model, beta_schedule(epoch, epochs, self.params.beta_start, self.params.beta_end))

    def after_finetune(self, model, batches) -> None:
        from edgeseg.compress.ternary import reestimate_bn

        if self.params.bn_reestimate:
            reestimate_bn(model, batches)


class Binary(Ternary):
    """The binary baseline of TernaryNet: sign() weights and activations with per-layer scales."""

    name = "binary"

    def _quantizers(self):
        from edgeseg.compress.ternary import BinaryAct, BinaryWeight

        return BinaryWeight(), BinaryAct(self.params.beta_start)


@dataclass(frozen=True)
class TernaryNetParams:
    beta_start: float = 3.0   # slope of the surrogate gradient (or smooth forward) at the first epoch ...
    beta_end: float = 8.0     # ... and at the last
    ste: bool = True          # hard step forward in training too (else the smooth tt_beta forward)
    surrogate: str = "staircase"  # STE gradient: "staircase" (slope of tt_beta / tanh) or "clipped" (1 on |u| <= 1)
    float_last_act: bool = False  # the classifier's input stays a float ReLU (the authors' script)
    quantize_acts: bool = True    # false: weights only, every ReLU kept (ablation: the gap split into weights / activations)
    keep_first_last: bool = True
    quantize_head: bool = False

    def __post_init__(self):
        if not 0 < self.beta_start <= self.beta_end:
            raise ValueError("need 0 < beta_start <= beta_end")
        from edgeseg.compress.ternarynet import SURROGATES

        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {', '.join(SURROGATES)}, not '{self.surrogate}'")


class TernaryNet(Scheme):
    """TernaryNet's own placement: ternary weights, conv -> BN -> tt_beta replacing every backbone ReLU
    (signed, {-1, 0, +1} in BN units); meant to be trained from scratch ([scratch] in the recipe)."""

    name = "ternarynet"
    Params = TernaryNetParams

    def _weight(self):
        from edgeseg.compress.ternary import TernaryWeight

        return TernaryWeight()

    def _act(self):
        from edgeseg.compress.ternarynet import SignedTernary

        return SignedTernary(self.params.beta_start, self.params.ste, self.params.surrogate)

    def apply(self, model, input_shape) -> list[dict]:
        from edgeseg.compress.ternarynet import replace_relus

        p = self.params
        plan = qat.plan_layers(model, input_shape, True, p.keep_first_last, p.quantize_head)
        qat.swap_convs(model, plan, lambda name, s: (self._weight(), None))
        acts = replace_relus(model, self._act, keep_last=p.float_last_act) if p.quantize_acts else []
        return [{"layer": n} for n in plan] + [{"activation": n} for n in acts]

    def on_epoch(self, model, epoch: int, epochs: int) -> None:
        from edgeseg.compress.ternary import beta_schedule
        from edgeseg.compress.ternarynet import set_beta

        set_beta(model, beta_schedule(epoch, epochs, self.params.beta_start, self.params.beta_end))


class BinaryNet(TernaryNet):
    """The binary baseline in the same placement: sign weights, sign activations replacing the ReLUs."""

    name = "binarynet"

    def _weight(self):
        from edgeseg.compress.ternary import BinaryWeight

        return BinaryWeight()

    def _act(self):
        from edgeseg.compress.ternarynet import SignedBinary

        return SignedBinary(self.params.beta_start, self.params.ste, self.params.surrogate)


@dataclass(frozen=True)
class TuckerParams:
    df: float = 0.5           # rank factor: R = ceil(C * df), floored at min_rank, capped at C
    energy: float = 0.0       # > 0: rank keeping this share of squared singular values instead of df
    min_rank: int = 4
    hooi_iters: int = 2
    skip: tuple[str, ...] = ()  # conv name globs left alone
    rank_multiple: int = 1    # ranks rounded up to a multiple of this (8: ORT's AVX2 channel block; see tucker.rank_for)

    def __post_init__(self):
        if not 0 < self.df <= 1 or not 0 <= self.energy <= 1 or self.rank_multiple < 1:
            raise ValueError("df must be in (0, 1], energy in [0, 1] and rank_multiple >= 1")


class Tucker(Scheme):
    """Post-training Tucker-2 of conv kernels (Weber et al.)."""

    name = "tucker"
    Params = TuckerParams
    export_kind = "float"

    def label(self) -> str:
        return f"Tucker e{self.params.energy:g}" if self.params.energy > 0 else f"Tucker DF {self.params.df:g}"

    def apply(self, model, input_shape) -> list[dict]:
        from edgeseg.compress.tucker import decompose_model

        p = self.params
        return decompose_model(model, p.df, p.energy, p.min_rank, p.hooi_iters, p.skip, p.rank_multiple)

    def rebuild(self, model, input_shape, records) -> None:
        from edgeseg.compress.tucker import decompose_conv

        for r in records:
            if r.get("decomposed"):
                parent, _, child = r["layer"].rpartition(".")
                owner = model.get_submodule(parent) if parent else model
                setattr(owner, child, decompose_conv(getattr(owner, child), ranks=tuple(r["ranks"]), hooi_iters=0))

    def calibrate(self, model, batches) -> None:
        pass

    def scratch_init(self, model, records) -> None:
        """The from-scratch control: the decomposed layers get PyTorch's default init, not factors of random weights."""
        for r in records:
            if r.get("decomposed"):
                for m in model.get_submodule(r["layer"]):
                    m.reset_parameters()
