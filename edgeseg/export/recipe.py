"""The export recipe: which model, which target, how to quantize and verify (TOML -> frozen dataclasses).

Relative paths in an export recipe are relative to the folder of the recipe file, so a recipe in
`export/` names `../recipes/unet-s2-brain.toml`. From the command line (`edgeseg export CHECKPOINT`)
they are relative to the current directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeseg.config import from_dict, read_toml, recipe_hash, to_dict
from edgeseg.errors import EdgesegError

METHODS = ("minmax", "entropy", "percentile")
PRECISIONS = ("fp32", "fp16", "int8")
FORMATS = ("qdq", "qoperator")


@dataclass(frozen=True)
class SourceConfig:
    checkpoint: str = ""        # model.pt written by `edgeseg train`
    train_recipe: str = ""      # training recipe used to (re)train when the checkpoint is missing
    model: str = ""             # expected backbone name; a checkpoint of another architecture is refused


@dataclass(frozen=True)
class QuantizeConfig:
    method: str = "minmax"              # calibration: minmax | entropy | percentile
    calibration_slices: int = 64        # real slices of the training split, evenly spaced
    per_channel: bool = True            # per-output-channel weight scales
    activation_type: str = "int8"       # int8 (symmetric, zero point 0: what TensorRT parses) or uint8
    keep_float: tuple[str, ...] = ()    # node names or globs kept in float, e.g. "/sr_head/*"
    float_below_channels: int = 0       # convs with fewer input channels stay float (0: none); CPU speed
    percentile: float = 99.999          # for method = "percentile"
    compact_names: bool = True          # short internal tensor names in the INT8 file (node names stay readable)
    format: str = "qdq"                 # qdq (QuantizeLinear/DequantizeLinear: ORT and TensorRT) or qoperator (QLinearConv...: ORT only)
    float_below_both: int = 0           # convs with fewer input AND fewer output channels than this stay float (0: none)
    also_quantize: tuple[str, ...] = ()  # op types quantized besides ONNX Runtime's QDQ defaults, e.g. "DepthToSpace" (u8 copy, no float round trip)
    # op types taken out of ONNX Runtime's defaults, e.g. "Concat": the quantizer puts no Q/DQ of its own around
    # them (ORT may still fuse DQ -> Concat -> Q into QLinearConcat where the neighbours are quantized anyway)
    float_op_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifyConfig:
    parity_slices: int = 8              # real test slices for the FP32 ONNX vs PyTorch comparison
    parity_atol: float = 1e-4           # target for max |ONNX - PyTorch| on logits
    int8_dice_tolerance: float = 0.005  # INT8 may lose at most 0.5 Dice points (mean foreground, test split) vs PyTorch
    size_ratio_target: float = 0.30     # INT8 file size / FP32 file size
    latency_runs: int = 20              # timed single-thread runs per variant (median reported)
    per_layer_on_failure: bool = True   # ORT QDQ debugging when INT8 misses its Dice tolerance


@dataclass(frozen=True)
class ExportRecipe:
    name: str = "model"                 # file stem: <name>.fp32.onnx, <name>.int8.onnx, ...
    target: str = "jetson-nano"         # a file in edgeseg/export/targets/
    opset: int = 0                      # 0 = the target's default opset
    dynamic_batch: bool = False         # False: static N=1 (simplest for TensorRT); True: symbolic batch axis
    out_dir: str = ""                   # default: <checkpoint folder>/export-<target>
    fp16: bool = True
    source: SourceConfig = field(default_factory=SourceConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)

    def __post_init__(self):
        if self.quantize.method not in METHODS:
            raise ValueError(f"quantize.method '{self.quantize.method}' is not one of {', '.join(METHODS)}")
        if self.quantize.format not in FORMATS:
            raise ValueError(f"quantize.format must be one of {', '.join(FORMATS)}, not '{self.quantize.format}'")
        if self.quantize.activation_type not in ("int8", "uint8"):
            raise ValueError(f"quantize.activation_type must be int8 or uint8, not '{self.quantize.activation_type}'")
        if not self.source.checkpoint and not self.source.train_recipe:
            raise ValueError("[source] needs a checkpoint or a train_recipe")

    def to_dict(self) -> dict:
        return to_dict(self)

    def hash(self) -> str:
        return recipe_hash(self.to_dict())


def _with_target_defaults(data: dict, target: str) -> dict:
    """The recipe dict with the target's [quantize] defaults under its own [quantize] keys."""
    from edgeseg.export.check import load_target

    quantize = data.get("quantize") or {}
    return {**data, "target": target, "quantize": {**load_target(target).quantize, **quantize}}


def load_export_recipe(path: str | Path, target: str | None = None) -> tuple[ExportRecipe, Path]:
    """-> (recipe, base folder for its relative paths). Unknown keys are an error naming the key.

    `target` (the command line's --target) replaces the recipe's; the target's [quantize] defaults
    (edgeseg/export/targets/<name>.toml) fill the keys the recipe's own [quantize] does not set."""
    path = Path(path)
    data = read_toml(path)
    data = _with_target_defaults(data, target or data.get("target") or ExportRecipe.target)
    recipe = from_dict(ExportRecipe, data, str(path))
    return recipe, path.resolve().parent


def resolve(base: Path, value: str) -> Path | None:
    if not value:
        return None
    p = Path(value)
    return p if p.is_absolute() else (base / p)


def recipe_for_checkpoint(checkpoint: str, target: str, out_dir: str = "", **quantize) -> ExportRecipe:
    """The recipe `edgeseg export CHECKPOINT --target T` runs (the target's [quantize] defaults, then `quantize`)."""
    from edgeseg.export.check import load_target

    try:
        given = {k: v for k, v in quantize.items() if v is not None}
        q = from_dict(QuantizeConfig, {**load_target(target).quantize, **given}, "options")
        return ExportRecipe(name=Path(checkpoint).stem, target=target, out_dir=out_dir,
                            source=SourceConfig(checkpoint=checkpoint), quantize=q)
    except ValueError as exc:
        raise EdgesegError(str(exc)) from exc
