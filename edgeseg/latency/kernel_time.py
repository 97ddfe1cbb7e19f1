"""The priced time of one kernel (roofline.py) or layout reorder (layout.py)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KernelTime:
    name: str
    ops: tuple[str, ...]
    op_class: str
    seconds: float
    compute_s: float
    memory_s: float
    flops: int
    bytes: int
    estimated: bool

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"
