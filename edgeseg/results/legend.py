"""The overlay's legend strip: a colour swatch and the class name per segment, drawn with a 3x5 pixel
font (numpy only: the board has no font files or imaging library to rely on)."""
from __future__ import annotations

import numpy as np

from edgeseg.results.colours import rgb

# 3x5 glyphs, rows top to bottom, '#' = ink; lower case is drawn as upper case
_GLYPHS = {
    "A": ".#.#.#####.##.#", "B": "##.#.###.#.###.", "C": ".###..#..#...##", "D": "##.#.##.##.###.",
    "E": "####..##.#..###", "F": "####..##.#..#..", "G": ".###..#.##.#.##", "H": "#.##.#####.##.#",
    "I": "###.#..#..#.###", "J": "..#..#..##.#.#.", "K": "#.##.###.#.##.#", "L": "#..#..#..#..###",
    "M": "#.########.##.#", "N": "##.#.##.##.##.#", "O": ".#.#.##.##.#.#.", "P": "##.#.###.#..#..",
    "Q": ".#.#.##.###..##", "R": "##.#.###.#.##.#", "S": ".###...#...###.", "T": "###.#..#..#..#.",
    "U": "#.##.##.##.####", "V": "#.##.##.##.#.#.", "W": "#.##.########.#", "X": "#.##.#.#.#.##.#",
    "Y": "#.##.#.#..#..#.", "Z": "###..#.#.#..###", "0": "####.##.##.####", "1": ".#.##..#..#.###",
    "2": "##...#.#.#..###", "3": "##...#.#...###.", "4": "#.##.####..#..#", "5": "####..##...###.",
    "6": ".###..####.####", "7": "###..#.#..#..#.", "8": "####.#####.####", "9": "####.####..###.",
    "_": "............###", "-": "......###......", " ": "...............", ".": ".............#.",
}
SCALE = 2            # each font pixel is 2x2 screen pixels
GLYPH_W, GLYPH_H = 3 * SCALE, 5 * SCALE


def _glyph(ch: str) -> np.ndarray:
    bits = _GLYPHS.get(ch.upper(), _GLYPHS[" "])
    g = np.array([c == "#" for c in bits], dtype=bool).reshape(5, 3)
    return np.kron(g, np.ones((SCALE, SCALE), dtype=bool))


def text_mask(text: str) -> np.ndarray:
    """(GLYPH_H, width) boolean ink of `text`, one glyph column of space between characters."""
    cols = []
    for ch in text:
        cols += [_glyph(ch), np.zeros((GLYPH_H, SCALE), dtype=bool)]
    return np.concatenate(cols, axis=1) if cols else np.zeros((GLYPH_H, 0), dtype=bool)


def legend_strip(class_names, width: int) -> np.ndarray:
    """(height, width, 3) uint8: for each non-background class a swatch in its colour and its name."""
    pad, swatch = 4, GLYPH_H
    height = GLYPH_H + 2 * pad
    strip = np.zeros((height, width, 3), dtype=np.uint8)
    x = pad
    for k, name in enumerate(class_names):
        if k == 0:
            continue
        ink = text_mask(name)
        if x + swatch + pad + ink.shape[1] > width:
            break  # no room left: the report's "colours" has the full legend
        strip[pad:pad + swatch, x:x + swatch] = rgb(k)
        x += swatch + pad
        region = strip[pad:pad + GLYPH_H, x:x + ink.shape[1]]
        region[ink] = (255, 255, 255)
        x += ink.shape[1] + 3 * pad
    return strip
