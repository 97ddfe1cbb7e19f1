"""One colour per class, shared by the DICOM SEG (RecommendedDisplayCIELabValue) and the overlay PNG,
so a viewer shows the segments in the colours of the quick-look picture."""
from __future__ import annotations

import numpy as np

# class index -> sRGB; 0 is background (never drawn, no segment)
PALETTE = np.array([[0, 0, 0], [255, 200, 0], [0, 160, 255], [255, 60, 60], [80, 220, 80], [200, 80, 255],
                    [255, 140, 200], [0, 220, 200]], dtype=np.uint8)


def rgb(k: int) -> tuple[int, int, int]:
    """sRGB of class k (the palette repeats past its end)."""
    return tuple(int(v) for v in PALETTE[k % len(PALETTE)])


def legend(class_names) -> dict[str, str]:
    """{class name: '#rrggbb'} for every non-background class, as drawn in the overlay and the SEG."""
    return {name: "#{:02x}{:02x}{:02x}".format(*rgb(k)) for k, name in enumerate(class_names) if k > 0}
