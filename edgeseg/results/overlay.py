"""PNG overlay montage for a quick look (numpy + zlib only)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from edgeseg.results.colours import PALETTE
from edgeseg.io import atomic_write

COLOURS = PALETTE.astype(np.float32)


def encode_png(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes (8-bit truecolour, filter 0)."""
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def montage(volume: np.ndarray, mask: np.ndarray, tiles: int = 9, alpha: float = 0.45, tile_px: int = 160) -> np.ndarray:
    """Evenly spaced slices, greyscale (1st-99th percentile window) with coloured labels, in a grid.

    A quick look, kept cheap: tiles are decimated (every k-th row and column, nearest neighbour) so that
    their longer side is at most about `tile_px` pixels (a 256x256 series gives 128x128 tiles)."""
    n = len(volume)
    idx = np.unique(np.linspace(0, n - 1, min(tiles, n)).round().astype(int))
    step = max(1, -(-max(volume.shape[1:], default=1) // tile_px))
    volume, mask = volume[idx, ::step, ::step], mask[idx, ::step, ::step]
    idx = range(len(idx))
    # the display window from every other pixel of the tiles: a quarter of the sorting, the same picture
    lo, hi = np.percentile(volume[:, ::2, ::2], (1, 99)) if volume.size else (0.0, 1.0)
    cols = int(np.ceil(np.sqrt(len(idx))))
    rows = int(np.ceil(len(idx) / cols))
    h, w = volume.shape[1:]
    canvas = np.zeros((rows * h, cols * w, 3), dtype=np.uint8)
    a = int(round(alpha * 256))
    colours = (COLOURS.astype(np.uint16) * a)  # pre-weighted, integer blending
    for t, i in enumerate(idx):
        grey = (np.clip((volume[i] - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255)).astype(np.uint16)
        tile = np.repeat(grey[..., None], 3, axis=2)
        m = mask[i] > 0
        if m.any():
            tile[m] = (tile[m] * (256 - a) + colours[mask[i][m] % len(COLOURS)]) >> 8
        r, c = divmod(t, cols)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
    return canvas


def write_overlay(path: Path, volume: np.ndarray, mask: np.ndarray, class_names=()) -> Path:
    """The montage, with a legend strip (colour swatch + class name per segment) below it when names are given."""
    from edgeseg.results.legend import legend_strip

    picture = montage(volume, mask)
    if len(class_names) > 1:
        picture = np.concatenate([picture, legend_strip(class_names, picture.shape[1])], axis=0)
    return atomic_write(path, encode_png(picture))
