"""Figures read back by their pixels."""

import numpy as np
from PIL import Image

ATLAS_GREEN = (0, 255, 0)  # a colour no palette of ours uses: seen only if the atlas's is used


TAB_RED = (214, 39, 40)  # matplotlib's tab:red, the "after sampling" points


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)


def count_color(path, rgb, tolerance=6) -> int:
    return int((np.abs(pixels(path).astype(int) - rgb).max(axis=1) <= tolerance).sum())
