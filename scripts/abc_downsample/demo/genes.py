"""Gene tables of the newer datasets, each in its real columns: SEA-AD's own ENSG tables,
Macosko's smaller ENSMUSG table (a different gene universe from WMB's, overlapping it) and
the HMBA marmoset table with NCBI ids, which HMBA-10xMultiome-Subcortex borrows from
HMBA-10xMultiome-BG."""

import numpy as np
import pandas as pd

# The marmoset table is shared by two datasets written from different generators, so it
# comes from a fixed one: the same genes in every synthetic release.
MARMOSET_SEED = 9483


def human_genes(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """SEA-AD's ``gene.csv``: ``gene_identifier`` (ENSG), ``gene_symbol``, ``feature_types``,
    ``genome``, as the 10x feature list of GRCh38 has them."""
    ids = np.sort(rng.choice(300_000, size=n, replace=False)) + 1000
    symbols = [f"MT-ND{i}" if i % 9 == 0 else f"HG{i}" for i in range(1, n + 1)]
    return pd.DataFrame(
        {
            "gene_identifier": [f"ENSG{i:011d}" for i in ids],
            "gene_symbol": symbols,
            "feature_types": "Gene Expression",
            "genome": "GRCh38",
        }
    )


def macosko_genes(rng: np.random.Generator, wmb_genes: pd.DataFrame) -> pd.DataFrame:
    """Macosko's ``gene.csv`` (``gene_identifier, gene_symbol`` only): about two thirds of
    WMB's genes plus a few WMB does not have ("slightly different sets, large overlap"),
    sorted by id like the real table."""
    keep = np.sort(rng.choice(len(wmb_genes), size=max(8, 2 * len(wmb_genes) // 3), replace=False))
    shared = wmb_genes.iloc[keep][["gene_identifier", "gene_symbol"]]
    n_new = max(2, len(wmb_genes) // 20)
    fresh = rng.choice(99_000, size=n_new, replace=False) + 100_000  # WMB's ids are < 100,000
    own = pd.DataFrame(
        {
            "gene_identifier": [f"ENSMUSG{i:011d}" for i in fresh],
            "gene_symbol": [f"Macosko{i}" for i in range(1, n_new + 1)],
        }
    )
    return pd.concat([shared, own]).sort_values("gene_identifier", ignore_index=True)


def marmoset_genes(n: int) -> pd.DataFrame:
    """``HMBA-10xMultiome-BG/marmoset_gene``: NCBI ids (``NCBIGene:118152095``) with
    ``gene_symbol, description, molecular_type``."""
    rng = np.random.default_rng(MARMOSET_SEED)
    ids = np.sort(rng.choice(900_000, size=n, replace=False)) + 100_000_000
    symbols = [f"LOC{i}" if k % 4 == 0 else f"CJ{k + 1}" for k, i in enumerate(ids)]
    return pd.DataFrame(
        {
            "gene_identifier": [f"NCBIGene:{i}" for i in ids],
            "gene_symbol": symbols,
            "description": [f"synthetic marmoset gene {s}" for s in symbols],
            "molecular_type": rng.choice(["protein-coding", "ncRNA", "pseudo"], n),
        }
    )
