"""Sampling SEA-AD-Multiregion-10X's shape: 8.64 M nuclei, the group key in a membership
table that holds 6.01 M of them, x/y in the taxonomy's embedding table.

    python benchmarks/bench_sea_ad.py [--work DIR] [--runs 2] [--cores 2]
        [--cells 8641342] [--assigned 6013346]

Generates once, under ``--work`` (default ``benchmarks/work/sea_ad``), a local mirror of a
release (20260711) in SEA-AD's real shape (``abc_datasets_newer.md``): ``cell_metadata.csv``
with its 11 columns (1.6 GB; ``alignment_job_id`` integers, then 40-hex hashes), the
taxonomy's ``cell_to_cluster_membership`` (3 classes, 29 subclasses, 207 supertypes,
heavy-tailed), its long tables (colours in ``cluster_annotation_term``) and
``cell_2d_embedding_coordinates``, and ``gene.csv``; no matrices. The cache is filled with
hard links to the mirror.

Then, each from a fresh project, in turn ``--runs`` times:

- **sampling**: ``snakemake data/downsampled_cells.csv`` with ``abc.dataset:
  SEA-AD-Multiregion-10X`` and no profile file (inferred from the release), 200,000 cells;
  Snakemake's start-up included, the metadata verified by a warm-up run;
- **pandas**: what the Allen Institute's notebooks do: ``pandas.read_csv`` of the cell table
  and of the membership table, ``join(how="inner")``, then small supertypes whole and
  ``DataFrame.sample`` of the rest, the rows written.

Prints wall seconds, the peak of the largest process and of the whole process tree, and
the ratio pair by pair.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import yaml
from bench_whole_run import summary, timed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from abc_downsample.demo.common import file_facts, manifest_json  # noqa: E402
from abc_downsample.release.manifest import manifest_key  # noqa: E402

RELEASE = "20260711"
NAME = "SEA-AD-Multiregion-10X"
CELLS_DIR = f"metadata/{NAME}/20260711"
TAXONOMY_DIR = "metadata/SEA-AD-Multiregion-taxonomy/20260711"
REGIONS = ["AnG", "DFC", "FI", "HIP", "ITG", "LEC", "MEC", "MTG", "STG", "V1C"]
LEVELS = (("Class", 3, "CLAS"), ("Subclass", 29, "SUBC"), ("Supertype", 207, "SUPR"))
CHUNK = 500_000
TARGET = 200_000


def _bases(codes: np.ndarray) -> np.ndarray:
    """Codes as 16-letter ACGT barcodes."""
    shifts = np.arange(15, -1, -1, dtype=np.uint64) * 2
    digits = (codes.astype(np.uint64)[:, None] >> shifts) & 3
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[digits.astype(np.intp)]
    return letters.view("S16").ravel().astype(str)


def cell_rows(rng: np.random.Generator, start: int, n: int) -> pa.Table:
    """Rows ``start`` .. ``start + n`` of the cell table, in its real column order."""
    index = np.arange(start, start + n)
    # an odd multiplier modulo 2^32 is a bijection: unique barcodes, in no order
    barcode = _bases((index.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32))
    well = np.char.add(np.array(list("ABCDEFGH"))[index % 8], (index % 12 + 1).astype(str))
    sample = np.char.add(np.char.add((2000 + index % 908).astype(str), "_"), well)
    hashes = np.char.add("487b2a941fe5a47c12825a77b1a61f1173", (index % 913).astype(str))
    job = np.where(index < 6_000_000, (1_200_000_000 + index % 913).astype(str), hashes)
    library = np.char.add("L8XR_231221_02_", (index % 908).astype(str))
    region = np.array(REGIONS)[index % len(REGIONS)]
    return pa.table({
        "cell_label": np.char.add(np.char.add(barcode, "-"), sample),
        "cell_barcode": barcode,
        "barcoded_cell_sample_label": sample,
        "library_label": library,
        "alignment_job_id": job,
        "doublet_score": np.round(rng.random(n), 6),
        "umi_count": np.round(rng.lognormal(9, 1, n)),
        "donor_label": np.char.add("H21.33.", (index % 84).astype(str)),
        "exp_component_name": np.char.add(np.char.add(barcode, "-"), np.char.add(library, job)),
        "feature_matrix_label": np.char.add(region, "-10X"),
        "dataset_label": np.full(n, NAME),
    })  # fmt: skip


def write_cells(path: Path, rng, n_cells: int) -> pa.Array:
    """The cell table; returns the cell labels."""
    labels = []
    with pcsv.CSVWriter(path, cell_rows(rng, 0, 1).schema,
                        write_options=pcsv.WriteOptions(quoting_style="none")) as out:  # fmt: skip
        for start in range(0, n_cells, CHUNK):
            table = cell_rows(rng, start, min(CHUNK, n_cells - start))
            out.write_table(table)
            labels.append(table.column("cell_label"))
    return pa.chunked_array(labels).combine_chunks()


def write_taxonomy(directory: Path, rng, labels: pa.Array, n_assigned: int) -> None:
    """Membership of ``n_assigned`` cells (heavy-tailed supertypes), the long tables, the
    term table's colours, and the embedding of the assigned cells."""
    import pandas as pd

    n_groups = LEVELS[-1][1]
    weights = rng.lognormal(0, 1.6, n_groups)
    assigned = rng.choice(len(labels), n_assigned, replace=False)
    alias = rng.choice(n_groups, n_assigned, p=weights / weights.sum()) + 1
    pcsv.write_csv(pa.table({"cell_label": labels.take(pa.array(assigned)),
                             "cluster_alias": alias,
                             "label": pc.cast(alias, pa.string())}),
                   directory / "cell_to_cluster_membership.csv")  # fmt: skip
    pcsv.write_csv(pa.table({"cell_label": labels.take(pa.array(assigned)),
                             "x": rng.normal(0, 8, n_assigned), "y": rng.normal(0, 8, n_assigned)}),
                   directory / "cell_2d_embedding_coordinates.csv")  # fmt: skip
    sets, terms, long = [], [], []
    groups = np.arange(1, n_groups + 1)
    for order, (level, count, code) in enumerate(LEVELS):
        label = f"CCN20260630_LEVEL_{order}"
        parent = f"CCN20260630_LEVEL_{order - 1}" if order else ""
        sets.append({"name": level, "label": label, "description": level, "order": order,
                     "parent_term_set_label": parent})  # fmt: skip
        term_of = (groups - 1) * count // n_groups
        for t in range(count):
            terms.append({"label": f"CS_{code}_{t}", "name": f"{level} {t}",
                          "cluster_annotation_term_set_label": label,
                          "cluster_annotation_term_set_name": level,
                          "color_hex_triplet": f"#{(t * 2654435761) % 2**24:06X}"})  # fmt: skip
        for g, t in zip(groups, term_of, strict=True):
            long.append({"cluster_annotation_term_label": f"CS_{code}_{t}",
                         "cluster_annotation_term_set_name": level,
                         "cluster_annotation_term_name": f"{level} {t}", "cluster_alias": g,
                         "cluster_annotation_term_set_label": label})  # fmt: skip
    pd.DataFrame(sets).to_csv(directory / "cluster_annotation_term_set.csv", index=False)
    pd.DataFrame(terms).to_csv(directory / "cluster_annotation_term.csv", index=False)
    pd.DataFrame(long).to_csv(
        directory / "cluster_to_cluster_annotation_membership.csv", index=False
    )


def build_release(work: Path, n_cells: int, n_assigned: int) -> Path:
    """The mirror in ``work/bucket`` and a filled cache in ``work/abc_data`` (returned)."""
    bucket, cache = work / "bucket", work / "abc_data"
    manifest = bucket / manifest_key(RELEASE)
    if manifest.exists():
        return cache
    rng = np.random.default_rng(11)
    for directory in (CELLS_DIR, TAXONOMY_DIR):
        (bucket / directory).mkdir(parents=True, exist_ok=True)
    print("generating the cell table ...", flush=True)
    labels = write_cells(bucket / CELLS_DIR / "cell_metadata.csv", rng, n_cells)
    print("generating the taxonomy ...", flush=True)
    write_taxonomy(bucket / TAXONOMY_DIR, rng, labels, n_assigned)
    (bucket / CELLS_DIR / "gene.csv").write_text("gene_identifier,gene_symbol\nENSG0001,A\n")
    files = sorted(str(p.relative_to(bucket)) for p in bucket.rglob("*.csv"))
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_bytes(manifest_json(RELEASE, {f: file_facts(bucket / f) for f in files}))
    for path in [*files, manifest_key(RELEASE)]:
        (cache / path).parent.mkdir(parents=True, exist_ok=True)
        if not (cache / path).exists():
            os.link(bucket / path, cache / path)
    return cache


def project(work: Path, name: str, cache: Path) -> Path:
    directory = work / "runs" / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    config = {"abc": {"dataset": NAME, "release": RELEASE, "bucket": str(work / "bucket"),
                      "cache_dir": str(cache)},
              "sampling": {"target_cells": TARGET}}  # fmt: skip
    (directory / "bench.yaml").write_text(yaml.safe_dump(config))
    return directory


def run_sampling(work: Path, name: str, cache: Path, cores: int) -> dict:
    directory = project(work, name, cache)
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(directory), "--cores", str(cores),
               "--configfile", str(ROOT / "config" / "config.yaml"), str(directory / "bench.yaml"),
               "--", "data/downsampled_cells.csv"]  # fmt: skip
    return timed(command, directory / "snakemake.out")


PANDAS = """
import pandas as pd
cells = pd.read_csv({cells!r}, index_col="cell_label", dtype={{"alignment_job_id": str}})
membership = pd.read_csv({membership!r}, index_col="cell_label")
cells = cells.join(membership, how="inner")
small = cells.groupby("cluster_alias")["cell_barcode"].transform("size") < 50
rest = cells[~small].sample(n={target} - int(small.sum()), random_state=1)
pd.concat([cells[small], rest]).to_csv({out!r})
"""


def run_pandas(work: Path, name: str, cache: Path, cores: int) -> dict:
    directory = project(work, name, cache)
    code = PANDAS.format(cells=str(cache / CELLS_DIR / "cell_metadata.csv"),
                         membership=str(cache / TAXONOMY_DIR / "cell_to_cluster_membership.csv"),
                         target=TARGET, out=str(directory / "cells.csv"))  # fmt: skip
    return timed([sys.executable, "-c", code], directory / "pandas.out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--cells", type=int, default=8_641_342)
    parser.add_argument("--assigned", type=int, default=6_013_346)
    args = parser.parse_args()
    work = (args.work or ROOT / "benchmarks" / "work" / "sea_ad").resolve()
    cache = build_release(work, args.cells, args.assigned)
    run_sampling(work, "warmup", cache, args.cores)  # the metadata verified, pages warm
    results = {"sampling": [], "pandas": []}
    for run in range(args.runs):  # in turn: each pair shares the machine's load
        for name, runner in (("sampling", run_sampling), ("pandas", run_pandas)):
            results[name].append(runner(work, f"{name}-{run}", cache, args.cores))
            print(json.dumps({"name": name, "run": run, **results[name][-1]}), flush=True)
    print(json.dumps(summary("sampling", results["sampling"], results["pandas"])))
    print(json.dumps(summary("pandas", results["pandas"], None)))


if __name__ == "__main__":
    main()
