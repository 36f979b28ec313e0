"""How many cells each group keeps: the sampling strategies and their shared checks.

A strategy gets the group sizes, the target, each group's least count (``floors``: groups
under min_size whole, the others ``min(size, min_cells_per_group)``) and a generator, and
returns per-group counts: at least the least count each, summing to target. ``allocate``
has already handled targets at or above the population and targets below the floors.
"""

import logging
from collections.abc import Callable

import numpy as np

from abc_downsample.errors import AbcError

log = logging.getLogger("abc_downsample.sampling.sample")

Strategy = Callable[[np.ndarray, int, np.ndarray, np.random.Generator], np.ndarray]


def floors(sizes: np.ndarray, min_size: int, floor: int = 0) -> np.ndarray:
    """Each group's least count: groups under ``min_size`` whole, the others
    ``min(size, floor)``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return np.where(sizes < min_size, sizes, np.minimum(sizes, floor))


def _open_groups(sizes: np.ndarray, target: int, least: np.ndarray):
    """Counts at the least, the mask of groups with cells beyond it, what remains to draw."""
    counts = least.astype(np.int64)
    return counts, least < sizes, target - int(counts.sum())


def _largest_remainder(sizes: np.ndarray, budget: int, rng) -> np.ndarray:
    """``budget`` shared in proportion to ``sizes``; largest remainders (ties by rng) round up."""
    share, remainder = np.divmod(sizes * budget, int(sizes.sum()))  # exact integer arithmetic
    extra = budget - int(share.sum())
    order = np.lexsort((rng.random(len(sizes)), -remainder))
    share[order[:extra]] += 1
    return share


def _above_floor(sizes: np.ndarray, least: np.ndarray, budget: int) -> np.ndarray:
    """Which groups a common fraction ``f`` lifts above their least count, where
    ``sum(max(least, f * size)) == budget``: sorted by least/size, the groups held at their
    least are the shortest prefix after which the next group's least is within ``f``."""
    order = np.argsort(-least / sizes, kind="stable")
    s, held = sizes[order], least[order]
    held_sum = np.r_[0, np.cumsum(held)[:-1]]  # least of the groups before each
    rest = int(sizes.sum()) - np.r_[0, np.cumsum(s)[:-1]]  # cells of it and the groups after
    lifted = held * rest <= s * (budget - held_sum)  # least/size <= f, in integers
    first = int(np.argmax(lifted)) if lifted.any() else len(s)
    above = np.zeros(len(s), dtype=bool)
    above[order[first:]] = True
    return above


def proportional(sizes, target, least, rng):
    """One common fraction for every group above its least count, the others at it;
    largest remainders (ties by rng) round up. Without a floor: one fraction for all the
    groups that are not kept whole."""
    counts, open_, extra = _open_groups(sizes, target, least)
    if extra == 0 or not open_.any():
        return counts
    s, held = sizes[open_].astype(np.int64), least[open_]
    budget = extra + int(held.sum())  # what the open groups share, their least counts too
    above = _above_floor(s, held, budget)
    share = held.copy()
    if above.any():
        share[above] = _largest_remainder(s[above], budget - int(held[~above].sum()), rng)
    counts[open_] = share
    return counts


def pooled(sizes, target, least, rng):
    """The R recipe: one uniform draw over the pooled cells beyond the least counts.

    A uniform draw of n pooled cells is, per group, multivariate hypergeometric counts and
    then a uniform draw inside each group, which is what `draw_cells` does.
    """
    counts, open_, budget = _open_groups(sizes, target, least)
    if budget > 0:
        beyond = (sizes[open_] - least[open_]).astype(np.int64)
        counts[open_] += rng.multivariate_hypergeometric(beyond, budget)
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


def capped(sizes, target, least, rng):
    """Each group not kept whole keeps min(size, cap), the cap as high as the target allows
    (so at least any floor the target can hold); the few cells left over go one each to
    groups above the cap, chosen by rng."""
    counts, open_, _ = _open_groups(sizes, target, least)
    big = sizes[open_].astype(np.int64)
    budget = target - int(counts[~open_].sum())
    cap = _water_level(big, budget)
    share = np.minimum(big, cap)
    leftover = budget - int(share.sum())
    if leftover:
        share[rng.choice(np.flatnonzero(big > cap), leftover, replace=False)] += 1
    counts[open_] = share
    return counts


STRATEGIES: dict[str, Strategy] = {
    "proportional": proportional,
    "pooled": pooled,
    "capped": capped,
}


def allocate(sizes, target: int, min_size: int, strategy: str, rng, floor: int = 0) -> np.ndarray:
    """Per-group counts for ``strategy``, after the checks every strategy shares: groups
    under ``min_size`` whole, every other group at least ``min(size, floor)``."""
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
    least = floors(sizes, min_size, floor)
    _check_floors(sizes, least, target, min_size, floor)
    counts = np.asarray(STRATEGIES[strategy](sizes, target, least, rng), dtype=np.int64)
    if counts.sum() != target or (counts < least).any() or (counts > sizes).any():
        raise RuntimeError(f"strategy {strategy!r} broke its contract")  # a bug, not user's
    return counts


def _check_floors(sizes, least, target: int, min_size: int, floor: int) -> None:
    """One line naming the smallest target that holds the rare groups and the floors."""
    rare = sizes < min_size
    need = int(least.sum())
    if need <= target:
        return
    if floor == 0 or int(sizes[rare].sum()) > target:
        raise AbcError(
            f"target_cells={target} is below the {int(sizes[rare].sum())} cells of the "
            f"{int(rare.sum())} groups smaller than min_cluster_size={min_size}, which are "
            "kept whole: raise target_cells or lower min_cluster_size"
        )
    raise AbcError(
        f"target_cells={target} cannot hold every group's floor: the {int(rare.sum())} groups "
        f"under min_cluster_size={min_size} whole and min(size, {floor}) cells of the "
        f"{int((~rare & (sizes > 0)).sum())} others need {need} cells; the smallest target "
        f"that can is {need}: raise target_cells to {need} or lower min_cells_per_group"
    )
