"""Synthetic HMBA-10xMultiome-Subcortex (release 20261031, which the real bucket serves
from the staging bucket with credentials: how it is reached is the workflow's concern).

Traps reproduced: string aliases (``cluster_17``); no gene table of its own (its matrix
uses ``HMBA-10xMultiome-BG/marmoset_gene``, NCBI ids); labels ``<barcode>-<sample>`` with
no ``cell_barcode`` or ``library_label`` column; side tables ``barcoded_cell_sample`` and
``donor`` (no ``library``); neurotransmitters in ``cluster_to_neurotransmitter``
(``Group_NT``, ``Group_NT_color``) rather than in a term set.
Not seen, so chosen here [inferred]: directory versions (20261031), the level names (those
of HMBA-BG: neighborhood, class, subclass, group, cluster), a few cells without a cluster,
the columns of ``donor`` and ``cluster_to_dominant_region``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from abc_downsample.demo.common import random_barcodes
from abc_downsample.demo.datasets import N_GENES as BG_GENES
from abc_downsample.demo.genes import marmoset_genes
from abc_downsample.demo.newer_common import (
    barcodes_repeat,
    dataset_info,
    groups,
    matrix_keys,
    population,
    value_sets,
    write_matrices,
    write_tables,
)
from abc_downsample.demo.newer_taxonomy import Level, TaxonomyShape, integer_aliases

RELEASE = "20261031"
NAME = "HMBA-10xMultiome-Subcortex"
METADATA = "metadata/HMBA-10xMultiome-Subcortex/20261031"
MATRIX_DIR = "expression_matrices/HMBA-10xMultiome-Subcortex/20261031"
# HMBA-10xMultiome-BG's table, at the directory version of the synthetic 2025 release
GENES = "metadata/HMBA-10xMultiome-BG/20250531/marmoset_gene.csv"
COLUMNS = ["cell_label", "barcoded_cell_sample_label", "nCount_RNA", "nFeature_RNA",
           "doublet_score", "donor_label", "alignment_job_id", "In_BG_taxonomy_dataset",
           "feature_matrix_label", "dataset_label"]  # fmt: skip
ASSIGNED = 0.98
DONORS = {"CJ23.56.002": 32_330, "CJ23.56.003": 329_353, "CJ24.56.001": 221_105,
          "CJ24.56.004": 96_129}  # fmt: skip
TRANSMITTERS = {"GABA": "#ef3a5b", "Glut": "#2b93df", "GABA-Glut": "#a05ab0", "NN": "#808080"}

TAXONOMY = TaxonomyShape(
    directory="metadata/HMBA-Subcortex-taxonomy/20261031",
    date="20261031",
    levels=(Level("neighborhood", "NBHD", 8), Level("class", "CLAS", 30),
            Level("subclass", "SUBC", 90), Level("group", "GRPS", 200),
            Level("cluster", "CLUS", 700)),
    membership_label=False,
)  # fmt: skip

NEIGHBORHOODS = {"Subpallium GABA": ("STR D1 GABA", "STR D2 GABA"),
                 "Hypothalamus": ("HY Glut", "HY GABA"), "Thalamus": ("TH Glut",),
                 "Nonneuron": ("Astrocyte", "Oligodendrocyte")}  # fmt: skip


def write(root: Path, rng: np.random.Generator, ctx) -> dict:
    """Write the dataset (and the marmoset gene table it reads) under ``root``."""
    samples = _samples(rng)
    cells = population(rng, {NAME: 1.0}, ctx.n_cells,
                       lambda r, matrix_of: _cells(r, samples, matrix_of))  # fmt: skip
    listed = cells[cells["_in_metadata"]]
    clusters, taxonomy = groups(rng, TAXONOMY, listed, ASSIGNED, _parents(),
                                lambda parent, k: f"{parent[-1]}_{k}", _aliases)  # fmt: skip
    taxonomy.update(_cluster_annotations(rng, clusters))
    genes = marmoset_genes(BG_GENES)
    metadata = {
        "cell_metadata": listed[COLUMNS],
        "barcoded_cell_sample": samples,
        "donor": pd.DataFrame({
            "donor_label": list(DONORS), "donor_species": "NCBITaxon:9483",
            "species_scientific_name": "Callithrix jacchus",
            "donor_sex": rng.choice(["Female", "Male"], len(DONORS)),
            "donor_age": [f"{a} yrs" for a in rng.integers(2, 9, len(DONORS))]}),
        "value_sets": value_sets({"donor_label": ("donor", list(DONORS))}),
    }  # fmt: skip
    files = write_tables(root, METADATA, metadata)
    files += write_tables(root, TAXONOMY.directory, taxonomy)
    files += write_tables(root, GENES.rsplit("/", 1)[0], {"marmoset_gene": genes})
    obs = ["barcoded_cell_sample_label", "donor_label"]
    matrices = write_matrices(root, rng, MATRIX_DIR, cells, obs, genes)
    assigned = taxonomy["cell_to_cluster_membership"]["cell_label"]
    return dataset_info(RELEASE, METADATA, GENES, TAXONOMY.directory, matrices, listed, assigned,
                        files + matrix_keys(matrices))  # fmt: skip


def _aliases(rng: np.random.Generator, n: int) -> list[str]:
    return [f"cluster_{a}" for a in integer_aliases(rng, n)]


def _parents() -> list[tuple[str, str, str, str]]:
    return [
        (neighborhood, subclass.rsplit(" ", 1)[0], subclass, f"{subclass} {group}")
        for neighborhood, subclasses in NEIGHBORHOODS.items()
        for subclass in subclasses
        for group in ("A", "B")
    ]


def _samples(rng: np.random.Generator) -> pd.DataFrame:
    """``barcoded_cell_sample``: a few samples (``P0005_1``) per donor."""
    donors = np.repeat(list(DONORS), 3)
    n = len(donors)
    labels = [f"P{p:04d}_{k % 2 + 1}" for k, p in enumerate(rng.choice(np.arange(1, 300), n,
                                                                        replace=False))]
    return pd.DataFrame({
        "barcoded_cell_sample_label": labels,
        "tissue_name": [f"{d}.01.{k:02d}" for k, d in enumerate(donors)],
        "dissociated_cell_sample_name": [f"{d}.01.{k:02d}.01" for k, d in enumerate(donors)],
        "donor_label": donors,
        "hemisphere": rng.choice(["left", "right"], n),
        "RNA_aliquot_nhash_id": [f"RNA-{v}" for v in rng.integers(10**6, 10**7, n)],
        "ATAC_aliquot_nhash_id": [f"ATAC-{v}" for v in rng.integers(10**6, 10**7, n)],
        "cell_specimen_type": "Nuclei",
        "ATAC_library_technique": "10xMultiome;ATAC",
        "RNA_library_technique": "10xMultiome;GEX",
        "parcellation_term_identifier": "MBA:997",
        "region_of_interest_name": "whole brain",
        "region_of_interest_label": "Br",
        "anatomical_division_label": "Br",
        "enrichment_population": "No FACS",
    })  # fmt: skip


def _cells(rng, samples: pd.DataFrame, matrix_of: np.ndarray) -> pd.DataFrame:
    n = len(matrix_of)
    weights = samples["donor_label"].map(DONORS).to_numpy(float)
    sample = samples.iloc[rng.choice(len(samples), n, p=weights / weights.sum())]
    jobs = rng.choice(np.arange(240801, 241231), 9, replace=False)
    n_count = rng.integers(2000, 60_000, n)
    cells = pd.DataFrame({
        "cell_barcode": random_barcodes(rng, n),  # in the label only, not a column
        "barcoded_cell_sample_label": sample["barcoded_cell_sample_label"].to_numpy(),
        "nCount_RNA": n_count,
        "nFeature_RNA": n_count // rng.integers(3, 8, n),
        "doublet_score": np.round(rng.random(n) * 0.3, 6),
        "donor_label": sample["donor_label"].to_numpy(),
        "alignment_job_id": rng.choice(jobs, n),
        "In_BG_taxonomy_dataset": rng.integers(0, 2, n),
        "feature_matrix_label": matrix_of,
        "dataset_label": NAME,
    })  # fmt: skip
    barcodes_repeat(cells, "barcoded_cell_sample_label")
    cells.insert(0, "cell_label", cells["cell_barcode"] + "-" + cells["barcoded_cell_sample_label"])
    return cells


def _cluster_annotations(rng, clusters: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``cluster_to_neurotransmitter`` and ``cluster_to_dominant_region``, by alias."""
    transmitter = [
        "NN" if n == "Nonneuron" else str(rng.choice(["GABA", "Glut", "GABA-Glut"]))
        for n in clusters["neighborhood"]
    ]
    regions = ["CaH", "Pu", "NAC", "GP", "TH", "HY"]
    return {
        "cluster_to_neurotransmitter": pd.DataFrame({
            "cluster_alias": clusters["cluster_alias"], "Group_NT": transmitter,
            "Group_NT_color": [TRANSMITTERS[t] for t in transmitter]}),
        "cluster_to_dominant_region": pd.DataFrame({
            "cluster_alias": clusters["cluster_alias"],
            "region_of_interest_label": rng.choice(regions, len(clusters)),
            "fraction_of_cells": np.round(rng.uniform(0.3, 1.0, len(clusters)), 4)}),
    }  # fmt: skip
