"""Which cells each group keeps: a uniform draw per group, independent of row order.

Each cell's random priority is a hash of its label and the seed, and a group keeps its
cells of lowest priority: a uniform draw per group (as sorting by label, then shuffling,
would be) without sorting 4 M strings.
"""

import numpy as np
import pyarrow.compute as pc

from abc_downsample.errors import AbcError
from abc_downsample.metadata.tables import as_arrow_strings
from abc_downsample.sampling.allocation import allocate
from abc_downsample.sampling.hashing import hash_labels


def label_priorities(labels, seed: int) -> np.ndarray:
    """A pseudo-random uint64 per cell, a function of its label and the seed only."""
    labels = as_arrow_strings(labels)
    if labels.null_count or (len(labels) and pc.min(pc.utf8_length(labels)).as_py() == 0):
        raise AbcError("some cells have an empty cell_label: the cell table is damaged")
    return hash_labels(labels, seed)


def draw_cells(codes: np.ndarray, priorities: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Boolean mask: in each group ``g`` the ``counts[g]`` cells of lowest priority.

    Sorting one uint64 key per cell (group in the high bits) gives each group's threshold;
    a tie at a threshold (a hash collision) falls back to an exact sort.
    """
    counts = np.asarray(counts, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    bits = max(1, (len(counts) - 1).bit_length())
    key = (codes.astype(np.uint64) << np.uint64(64 - bits)) | (priorities >> np.uint64(bits))
    sizes = np.bincount(codes, minlength=len(counts))
    starts = np.cumsum(sizes) - sizes
    taking = counts > 0
    threshold = np.zeros(len(counts), dtype=np.uint64)
    threshold[taking] = np.sort(key)[starts[taking] + counts[taking] - 1]
    selected = taking[codes] & (key <= threshold[codes])
    if selected.sum() == counts.sum():
        return selected
    order = np.lexsort((priorities, codes))
    rank = np.arange(len(codes)) - starts[codes[order]]
    selected = np.zeros(len(codes), dtype=bool)
    selected[order] = rank < counts[codes[order]]
    return selected


def select_cells(labels, group_codes, n_groups: int, *, target, min_size, strategy, seed,
                 floor: int = 0):  # fmt: skip
    """Sample cells: (mask of the selected cells, per-group counts).

    ``labels`` are the cells' labels, ``group_codes`` their group (0 .. n_groups-1); every
    group keeps at least ``min(size, floor)`` cells. The result depends on the set of
    (label, group) pairs and the arguments, not on row order.
    """
    group_codes = np.asarray(group_codes, dtype=np.int64)
    sizes = np.bincount(group_codes, minlength=n_groups)
    rng = np.random.default_rng(seed)
    counts = allocate(sizes, target, min_size, strategy, rng, floor)
    return draw_cells(group_codes, label_priorities(labels, seed), counts), counts

