"""How many cells each group keeps: the sampling strategies and their shared checks.

A strategy gets the group sizes, the target, the rare-group threshold and a generator, and
returns per-group counts: every group under min_size whole, counts summing to target.
`allocate` has already handled targets at or above the population and infeasible ones.
"""

import logging
from collections.abc import Callable

import numpy as np

from abc_downsample.errors import AbcError

log = logging.getLogger("abc_downsample.sampling.sample")

Strategy = Callable[[np.ndarray, int, int, np.random.Generator], np.ndarray]


def _rare_whole(sizes: np.ndarray, target: int, min_size: int):
    """Counts with the rare groups whole, the mask of the others, and what remains to draw."""
    rare = sizes < min_size
    counts = np.where(rare, sizes, 0).astype(np.int64)
    return counts, ~rare, target - int(counts.sum())


def proportional(sizes, target, min_size, rng):
    """One common fraction for the larger groups; largest remainders (ties by rng) round up."""
    counts, large, budget = _rare_whole(sizes, target, min_size)
    big = sizes[large].astype(np.int64)
    total = int(big.sum())
    if budget == 0 or total == 0:
        return counts
    share, remainder = np.divmod(big * budget, total)  # exact integer arithmetic
    extra = budget - int(share.sum())
    order = np.lexsort((rng.random(len(big)), -remainder))
    share[order[:extra]] += 1
    counts[large] = share
    return counts


def pooled(sizes, target, min_size, rng):
    """The R recipe: one uniform draw over the pooled cells of the larger groups.

    A uniform draw of n pooled cells is, per group, multivariate hypergeometric counts and
    then a uniform draw inside each group, which is what `draw_cells` does.
    """
    counts, large, budget = _rare_whole(sizes, target, min_size)
    if budget > 0:
        counts[large] = rng.multivariate_hypergeometric(sizes[large].astype(np.int64), budget)
    return counts


def _water_level(sizes: np.ndarray, budget: int) -> int:
    """The largest cap with sum(min(size, cap)) <= budget (binary search)."""
    low, high = 0, int(sizes.max(initial=0))
    while low < high:
        cap = (low + high + 1) // 2
        if int(np.minimum(sizes, cap).sum()) <= budget:
            low = cap
        else:
            high = cap - 1
    return low


def capped(sizes, target, min_size, rng):
    """Each larger group keeps min(size, cap), the cap as high as the target allows; the
    few cells left over go one each to groups above the cap, chosen by rng."""
    counts, large, budget = _rare_whole(sizes, target, min_size)
    big = sizes[large].astype(np.int64)
    cap = _water_level(big, budget)
    share = np.minimum(big, cap)
    leftover = budget - int(share.sum())
    if leftover:
        share[rng.choice(np.flatnonzero(big > cap), leftover, replace=False)] += 1
    counts[large] = share
    return counts


STRATEGIES: dict[str, Strategy] = {
    "proportional": proportional,
    "pooled": pooled,
    "capped": capped,
}


def allocate(sizes, target: int, min_size: int, strategy: str, rng) -> np.ndarray:
    """Per-group counts for ``strategy``, after the checks every strategy shares."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if strategy not in STRATEGIES:
        raise AbcError(f"unknown sampling.strategy {strategy!r}: use one of {sorted(STRATEGIES)}")
    population = int(sizes.sum())
    if population == 0:
        raise AbcError("no cells to sample from: relax sampling.filters")
    if target >= population:
        log.warning(
            "target_cells=%d is not below the population of %d cells: taking all of them",
            target,
            population,
        )
        return sizes.copy()
    rare = sizes < min_size
    if int(sizes[rare].sum()) > target:
        raise AbcError(
            f"target_cells={target} is below the {int(sizes[rare].sum())} cells of the "
            f"{int(rare.sum())} groups smaller than min_cluster_size={min_size}, which are "
            "kept whole: raise target_cells or lower min_cluster_size"
        )
    counts = np.asarray(STRATEGIES[strategy](sizes, target, min_size, rng), dtype=np.int64)
    if counts.sum() != target or (counts < 0).any() or (counts > sizes).any():
        raise RuntimeError(f"strategy {strategy!r} broke its contract")  # a bug, not user's
    return counts

