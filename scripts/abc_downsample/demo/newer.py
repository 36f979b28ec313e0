"""The datasets of the releases after 20250531, by family, and the release that first lists
each. A family is written by one generator seeded from its name, so a dataset's files are
the same whichever other datasets a synthetic release holds."""

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from abc_downsample.demo import consensus, dev_mouse, hmba_subcortex, sea_ad


@dataclass(frozen=True)
class Context:
    """What the newer datasets take from the rest of the synthetic release."""

    root: Path
    seed: int
    n_cells: int  # cells of each dataset's cell table (Consensus-WMB-AIBS-10X: WMB's share)
    n_genes: int  # genes of the tables made here (Macosko's is smaller, marmoset fixed)
    wmb_cells: pd.DataFrame  # WMB-10X's cell table: AIBS's cells are mostly WMB's
    wmb_genes: pd.DataFrame
    wmb_matrices: dict  # write_release's "matrices": AIBS's cells name them
    wmb_metadata: str  # WMB-10X's metadata directory as the newer releases list it


@dataclass(frozen=True)
class Family:
    key: str  # seeds its generator
    release: str  # the first release that lists its datasets
    datasets: tuple[str, ...]  # written together (Consensus: one taxonomy for both)
    write: Callable[[Path, np.random.Generator, Context], dict[str, dict]]


def _alone(name: str, write) -> Callable:
    """The ``write`` of a family of one dataset: ``write(root, rng, ctx)`` gives its info."""
    return lambda root, rng, ctx: {name: write(root, rng, ctx)}


FAMILIES = (
    Family("Consensus-WMB", consensus.RELEASE, (consensus.MACOSKO, consensus.AIBS),
           consensus.write),
    Family(dev_mouse.NAME, dev_mouse.RELEASE, (dev_mouse.NAME,),
           _alone(dev_mouse.NAME, dev_mouse.write)),
    *(Family(name, sea_ad.RELEASE, (name,), _alone(name, partial(sea_ad.write, name=name)))
      for name in sea_ad.SHAPES),
    Family(hmba_subcortex.NAME, hmba_subcortex.RELEASE, (hmba_subcortex.NAME,),
           _alone(hmba_subcortex.NAME, hmba_subcortex.write)),
)  # fmt: skip
FAMILY_OF = {name: family for family in FAMILIES for name in family.datasets}
RELEASES = tuple(sorted({family.release for family in FAMILIES}))


def write_newer(root: Path, names, ctx: Context) -> dict[str, dict]:
    """Write the families of ``names`` under ``root``; return {dataset: info} for every
    dataset written (a Consensus name brings its other half). Each info has ``release``,
    ``cells``, ``genes``, ``taxonomy``, ``matrices``, ``n_cells``, ``n_assigned`` and
    ``files`` (every key it wrote)."""
    infos = {}
    for family in FAMILIES:
        if set(family.datasets) & set(names):
            rng = np.random.default_rng([ctx.seed, zlib.crc32(family.key.encode())])
            infos.update(family.write(root, rng, ctx))
    return infos
