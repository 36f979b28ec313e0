"""The whole run at the atlas's shape: the workflow against the seed-style whole-file pipeline.

    python benchmarks/bench_whole_run.py [--work DIR] [--genes 500] [--runs 2] [--cores 2]
        [--only ours seed sampling pandas] [--cells 4042976]

``--only sampling pandas``: the sampling target alone (``snakemake data/downsampled_cells.csv``
from a fresh project, Snakemake's start-up included, the metadata verified by a warm-up
run) against ``pandas.read_csv`` + ``groupby().sample()`` of the same table; ``--cells``
other than the atlas's makes a release of that many cells with no matrices (SEA-AD's shape:
8,640,000), for these two only. Each figure is run in turn with its anchor, and the ratio
is taken pair by pair.

Generates once, under ``--work`` (default ``benchmarks/work/whole_run``), a local mirror of
a release in the real format: ``cell_metadata.csv`` (4,042,976 cells, the 17 real columns,
5,322 heavy-tailed clusters), ``gene.csv`` (``--genes`` genes), the WMB taxonomy's long
tables (34 classes, 338 subclasses, 1,201 supertypes), the 24 raw matrices under their real
names (each with its cells plus 300 that are not in the cell table, in another order, a
cell expressing 5-25 % of the genes, written by plain ``AnnData.write_h5ad``: X chunked)
and the manifest. The cache is filled with hard links to the mirror.

Then times, each from a fresh project directory sharing that cache, ``--runs`` times:

- **ours**: ``snakemake --cores N <result h5ad>`` (download mode, 200,000 cells). A first
  run checks each cached file's MD5 once (``abc.verify: stamp``); it is timed apart.
- **seed**: the whole-file way in one Python: ``pandas.read_csv`` of the whole cell table,
  small clusters whole plus ``DataFrame.sample`` of the rest, ``anndata.read_h5ad`` of each
  whole matrix, subset by label, ``anndata.concat``, metadata and taxonomy joined,
  ``write_h5ad``.

Peak memory is the largest sum of the resident sizes of the run's processes (sampled every
0.1 s with psutil); the largest single process is printed too. For ours, the job seconds
per rule come from Snakemake's benchmark files.
"""

import argparse
import contextlib
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import yaml
from bench_sampling import N_CELLS, N_CLUSTERS, cluster_sizes, metadata_chunk, taxonomy_terms

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from abc_downsample.cache.layout import STATE_DIR  # noqa: E402
from abc_downsample.demo.common import (  # noqa: E402
    file_facts,
    long_taxonomy_tables,
    manifest_json,
)
from abc_downsample.release.manifest import manifest_key  # noqa: E402

RELEASE = "20250531"
CELLS_DIR = "metadata/WMB-10X/20241115"
TAXONOMY_DIR = "metadata/WMB-taxonomy/20231215"
V2 = ["CTXsp", "HPF", "HY", "Isocortex-1", "Isocortex-2", "Isocortex-3", "Isocortex-4",
      "MB", "OLF", "TH"]  # fmt: skip
V3 = ["CB", "CTXsp", "HPF", "HY", "Isocortex-1", "Isocortex-2", "MB", "MY", "OLF", "P",
      "PAL", "STR", "TH"]  # fmt: skip
# (dataset_label, directory version, library_method, cells of the dataset, its matrices)
DATASETS = [
    ("WMB-10Xv2", "20230630", "10Xv2", 1_699_939, [f"WMB-10Xv2-{r}" for r in V2]),
    ("WMB-10Xv3", "20230630", "10Xv3", 2_341_350, [f"WMB-10Xv3-{r}" for r in V3]),
    ("WMB-10XMulti", "20230830", "10xRSeq_Mult", 1_687, ["WMB-10XMulti"]),
]
EXTRA_CELLS = 300  # cells of a matrix that are not in the cell table
ROWS_PER_BLOCK = 20_000
TARGET = 200_000


# ---- the release ------------------------------------------------------------------------


def matrices() -> list[tuple[str, str, str, str]]:
    """(label, dataset_label, library_method, relative path) of the 24 raw matrices."""
    return [
        (label, name, method, f"expression_matrices/{name}/{version}/{label}-raw.h5ad")
        for name, version, method, _, labels in DATASETS
        for label in labels
    ]


def matrix_of_cells(rng: np.random.Generator, n_total: int) -> np.ndarray:
    """Each cell's matrix (an index into ``matrices()``), in random order; the datasets'
    shares of the atlas kept for another total."""
    counts = []
    for *_, n_cells, labels in DATASETS:
        n_cells = n_cells * n_total // N_CELLS
        share = rng.dirichlet(np.full(len(labels), 4.0))
        sizes = np.floor(share * n_cells).astype(np.int64)
        sizes[0] += n_cells - sizes.sum()
        counts.extend(sizes)
    counts[0] += n_total - sum(counts)
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


def write_cell_table(path: Path, rng: np.random.Generator, n_cells: int = N_CELLS) -> pa.Table:
    """The cell table; returns each cell's label, barcode, library and matrix index."""
    aliases = rng.permutation(np.repeat(np.arange(1, N_CLUSTERS + 1), cluster_sizes(rng, n_cells)))
    barcodes = rng.permutation(n_cells) * 1000 + rng.integers(0, 1000, n_cells)
    which = matrix_of_cells(rng, n_cells)
    specs = matrices()
    labels, datasets, methods = (np.array([s[i] for s in specs]) for i in range(3))
    kept, chunk = [], 500_000
    schema = metadata_chunk(rng, aliases[:1], barcodes[:1]).schema
    options = pcsv.WriteOptions(quoting_style="none")
    with pcsv.CSVWriter(path, schema, write_options=options) as out:
        for start in range(0, n_cells, chunk):
            part = slice(start, start + chunk)
            table = metadata_chunk(rng, aliases[part], barcodes[part])
            for name, values in (
                ("feature_matrix_label", labels),
                ("dataset_label", datasets),
                ("library_method", methods),
            ):
                column = pa.array(values[which[part]])
                table = table.set_column(table.schema.get_field_index(name), name, column)
            out.write_table(table)
            kept.append(
                table.select(["cell_label", "cell_barcode", "library_label"]).append_column(
                    "matrix", pa.array(which[part])
                )
            )
    return pa.concat_tables(kept)


def write_taxonomy(directory: Path, rng: np.random.Generator) -> None:
    """The WMB taxonomy's long tables for 5,322 clusters."""
    import pandas as pd

    clusters = pd.DataFrame({**taxonomy_terms(), "number_of_cells": 0})
    alias = clusters["cluster_alias"].to_numpy()
    sets = ["class", "subclass", "supertype", "cluster", "neurotransmitter"]
    colors = pd.DataFrame(index=pd.Index(alias, name="cluster_alias"))
    for level in sets:
        codes = rng.integers(0, 2**24, clusters[level].nunique())
        by_term = dict(zip(sorted(clusters[level].unique()), codes, strict=True))
        colors[f"{level}_color"] = [f"#{by_term[t]:06X}" for t in clusters[level]]
    for name, table in long_taxonomy_tables(clusters, colors, sets, "CCN20230722").items():
        table.to_csv(directory / name, index=False)


def write_genes(path: Path, n_genes: int) -> list[str]:
    ids = [f"ENSMUSG{i * 37 + 1000:011d}" for i in range(n_genes)]
    with open(path, "w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["gene_identifier", "gene_symbol", "name", "mapped_ncbi_identifier",
                         "comment"])  # fmt: skip
        for i, gene in enumerate(ids):
            writer.writerow([gene, f"Gm{i}", f"gene {i}", f"NCBIGene:{100000 + i}", ""])
    return ids


def counts(rng: np.random.Generator, n_rows: int, n_genes: int):
    """A CSR count matrix whose cells express 5-25 % of the genes."""
    import scipy.sparse as sp

    fraction = rng.uniform(0.05, 0.25, n_rows).astype(np.float32)
    per_row, indices = [], []
    for start in range(0, n_rows, ROWS_PER_BLOCK):
        block = fraction[start : start + ROWS_PER_BLOCK]
        rows, cols = np.nonzero(
            rng.random((len(block), n_genes), dtype=np.float32) < block[:, None]
        )
        per_row.append(np.bincount(rows, minlength=len(block)))
        indices.append(cols.astype(np.int32))
    indices = np.concatenate(indices)
    indptr = np.r_[0, np.cumsum(np.concatenate(per_row))]
    data = rng.geometric(0.3, indices.size).astype(np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_genes))


def write_matrix(path: Path, rng, mine: pa.Table, index: int, genes: list[str]) -> None:
    """One matrix as the real ones are laid out, written by plain ``AnnData.write_h5ad``."""
    import anndata as ad
    import pandas as pd

    extra = [f"EXTRA{i:06d}-{index:02d}_X01" for i in range(EXTRA_CELLS)]
    order = rng.permutation(mine.num_rows + EXTRA_CELLS)
    labels = np.r_[mine["cell_label"].to_numpy(zero_copy_only=False), extra][order]
    obs = pd.DataFrame(
        {
            "cell_barcode": np.r_[
                mine["cell_barcode"].to_numpy(zero_copy_only=False), [e[:11] for e in extra]
            ][order],  # fmt: skip
            "library_label": pd.Categorical(
                np.r_[
                    mine["library_label"].to_numpy(zero_copy_only=False),
                    ["L8TX_EXTRA"] * EXTRA_CELLS,
                ][order]  # fmt: skip
            ),
            "anatomical_division_label": pd.Categorical(rng.choice(["MB", "TH", "HY"], len(order))),
        },
        index=pd.Index(labels, name="cell_label"),
    )
    var = pd.DataFrame(
        {"gene_symbol": [f"Gm{i}" for i in range(len(genes))]},
        index=pd.Index(genes, name="gene_identifier"),
    )
    uns = {"normalization": "raw", "parent": path.name, "parent_layer": "X", "parent_rows": 0}
    x = counts(rng, len(obs), len(genes))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.h5ad")
    ad.AnnData(x, obs=obs, var=var, uns=uns).write_h5ad(tmp)
    tmp.replace(path)


def build_release(work: Path, n_genes: int, n_cells: int = N_CELLS,
                  with_matrices: bool | None = None) -> Path:  # fmt: skip
    """The mirror in ``work/bucket`` and a filled cache in ``work/abc_data`` (returned):
    ``n_cells`` in the atlas's 24 matrices and 5,322 clusters. ``with_matrices``: write the
    matrices too (default: at the atlas's size; another is for the sampling alone)."""
    if with_matrices is None:
        with_matrices = n_cells == N_CELLS
    bucket, cache = work / "bucket", work / "abc_data"
    manifest = bucket / manifest_key(RELEASE)
    if manifest.exists():
        return cache
    rng = np.random.default_rng(13)
    (bucket / CELLS_DIR).mkdir(parents=True, exist_ok=True)
    (bucket / TAXONOMY_DIR).mkdir(parents=True, exist_ok=True)
    print("generating the cell table ...", flush=True)
    cells = write_cell_table(bucket / CELLS_DIR / "cell_metadata.csv", rng, n_cells)
    genes = write_genes(bucket / CELLS_DIR / "gene.csv", n_genes)
    write_taxonomy(bucket / TAXONOMY_DIR, rng)
    for index, (label, *_, relpath) in enumerate(matrices() if with_matrices else []):
        print(f"  {label}", flush=True)
        mine = cells.filter(pc.equal(cells["matrix"], index))
        write_matrix(bucket / relpath, rng, mine, index, genes)
    files = sorted(
        str(p.relative_to(bucket))
        for p in bucket.rglob("*")
        if p.is_file() and "releases" not in p.parts
    )
    listing = {path: file_facts(bucket / path) for path in files}
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_bytes(manifest_json(RELEASE, listing))
    for path in [*files, manifest_key(RELEASE)]:
        (cache / path).parent.mkdir(parents=True, exist_ok=True)
        if not (cache / path).exists():
            os.link(bucket / path, cache / path)
    return cache


# ---- measuring ----------------------------------------------------------------------------


class PeakMemory:
    """The largest sum of RSS over a process and its descendants, sampled in a thread."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.tree_mib = self.process_mib = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        import psutil

        while not self.done.wait(0.1):
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            sizes = []
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    sizes.append(process.memory_info().rss / 2**20)
            self.tree_mib = max(self.tree_mib, sum(sizes))
            self.process_mib = max(self.process_mib, max(sizes, default=0))

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)


def timed(command: list[str], log: Path, cwd: Path | None = None) -> dict:
    """Wall seconds and peak memory of ``command`` (its output to ``log``)."""
    start = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        peak = PeakMemory(process.pid)
        code = process.wait(timeout=3600)
        peak.stop()
    if code != 0:
        raise SystemExit(f"{command[:4]} failed ({code}); see {log}")
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "peak_tree_mib": round(peak.tree_mib),
        "peak_process_mib": round(peak.process_mib),
        "load_1min": round(os.getloadavg()[0], 1),
    }


def project(work: Path, name: str, cache: Path) -> Path:
    """A fresh project directory whose config points at the mirror and the shared cache."""
    directory = work / "runs" / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    config = {
        "abc": {"release": RELEASE, "bucket": str(work / "bucket"), "cache_dir": str(cache)},
        "sampling": {"target_cells": TARGET},
    }
    (directory / "bench.yaml").write_text(yaml.safe_dump(config))
    return directory


def snakemake_command(directory: Path, cores: int, target: str) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(directory), "--cores", str(cores),
        "--configfile", str(ROOT / "config" / "config.yaml"), str(directory / "bench.yaml"),
        "--", target,
    ]  # fmt: skip


def run_ours(work: Path, name: str, cache: Path, cores: int) -> dict:
    directory = project(work, name, cache)
    command = snakemake_command(directory, cores, "data/downsampled_expression.h5ad")
    result = timed(command, directory / "snakemake.out")
    result["job_s_by_rule"] = job_seconds(directory / "data" / "benchmarks")
    result["cells"] = result_cells(directory / "data" / "downsampled_expression.h5ad")
    return result


def run_sampling(work: Path, name: str, cache: Path, cores: int) -> dict:
    """The sampling target alone (Snakemake's start-up included), the metadata verified."""
    directory = project(work, name, cache)
    command = snakemake_command(directory, cores, "data/downsampled_cells.csv")
    result = timed(command, directory / "snakemake.out")
    result["job_s_by_rule"] = job_seconds(directory / "data" / "benchmarks")
    return result


PANDAS = """
import pandas as pd
cells = pd.read_csv({table!r})
small = cells.groupby("cluster_alias")["cell_label"].transform("size") < 50
rest = cells[~small].sample(n={target} - int(small.sum()), random_state=1)
pd.concat([cells[small], rest]).to_csv({out!r}, index=False)
"""


def run_pandas(work: Path, name: str, cache: Path, cores: int) -> dict:
    """pandas' read_csv + groupby sample of the same table (the sampled rows written)."""
    directory = project(work, name, cache)
    table = cache / CELLS_DIR / "cell_metadata.csv"
    code = PANDAS.format(table=str(table), target=TARGET, out=str(directory / "cells.csv"))
    return timed([sys.executable, "-c", code], directory / "pandas.out")


def job_seconds(benchmarks: Path) -> dict:
    """Seconds summed per rule, from Snakemake's benchmark files."""
    totals: dict[str, float] = {}
    for tsv in benchmarks.rglob("*.tsv"):
        parts = tsv.relative_to(benchmarks).parts
        rule = parts[0] if len(parts) > 1 else tsv.stem
        with open(tsv) as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        totals[rule] = round(totals.get(rule, 0.0) + float(row["s"]), 1)
    return dict(sorted(totals.items()))


def result_cells(path: Path) -> list[int]:
    import h5py

    with h5py.File(path) as f:
        return [int(n) for n in f["X"].attrs["shape"]]


SEED = """
import anndata as ad, numpy as np, pandas as pd
cache, target = {cache!r}, {target}
cells = pd.read_csv(cache + "/{cells_dir}/cell_metadata.csv", keep_default_na=False,
                    dtype={{"cluster_alias": int}})
long = pd.read_csv(cache + "/{taxonomy_dir}/cluster_to_cluster_annotation_membership.csv",
                   keep_default_na=False)
levels = long.pivot(index="cluster_alias", columns="cluster_annotation_term_set_name",
                    values="cluster_annotation_term_name")
small = cells.groupby("cluster_alias")["cell_label"].transform("size") < 50
rest = cells[~small].sample(n=target - int(small.sum()), random_state=1)
chosen = pd.concat([cells[small], rest]).set_index("cell_label")
parts = []
for label, relpath in {matrices!r}:
    adata = ad.read_h5ad(cache + "/" + relpath)
    parts.append(adata[adata.obs_names.isin(chosen.index)].copy())
    del adata
result = ad.concat(parts, merge="same")
obs = chosen.loc[result.obs_names]
result.obs = obs.join(levels, on="cluster_alias")
result.obsm["X_umap"] = obs[["x", "y"]].to_numpy()
result.write_h5ad({out!r})
"""


def run_seed(work: Path, name: str, cache: Path, cores: int) -> dict:
    directory = project(work, name, cache)
    out = directory / "seed.h5ad"
    code = SEED.format(
        cache=str(cache), target=TARGET, cells_dir=CELLS_DIR, taxonomy_dir=TAXONOMY_DIR,
        matrices=[(label, relpath) for label, *_, relpath in matrices()], out=str(out),
    )  # fmt: skip
    result = timed([sys.executable, "-c", code], directory / "seed.out")
    result["cells"] = result_cells(out)
    return result


RUNNERS = {"ours": run_ours, "seed": run_seed, "sampling": run_sampling, "pandas": run_pandas}
ANCHORS = {"ours": "seed", "sampling": "pandas"}  # each figure's anchor, run in turn with it


def summary(name: str, results: list[dict], anchors: list[dict] | None) -> dict:
    walls = [r["wall_s"] for r in results]
    out = {
        "name": name,
        "wall_s_median": round(statistics.median(walls), 1),
        "wall_s_all": walls,
        "peak_tree_mib_max": max(r["peak_tree_mib"] for r in results),
        "peak_process_mib_max": max(r["peak_process_mib"] for r in results),
        "load_1min": [r["load_1min"] for r in results],
        **{k: results[-1][k] for k in ("cells", "job_s_by_rule") if k in results[-1]},
    }
    if anchors:
        ratios = [r["wall_s"] / a["wall_s"] for r, a in zip(results, anchors, strict=False)]
        out["ratio_to_anchor_pairs"] = [round(x, 2) for x in ratios]
        out["ratio_to_anchor_median"] = round(statistics.median(ratios), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--genes", type=int, default=500)
    parser.add_argument("--cells", type=int, default=N_CELLS,
                        help="another count: metadata alone, for --only sampling pandas")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=["ours", "seed"], choices=list(RUNNERS))
    args = parser.parse_args()
    default = "whole_run" if args.cells == N_CELLS else f"whole_run_{args.cells}"
    work = (args.work or ROOT / "benchmarks" / "work" / default).resolve()
    cache = build_release(work, args.genes, args.cells)
    size = sum(p.stat().st_size for p in (work / "bucket").rglob("*.h5ad"))
    print(f"release: {size / 1e9:.2f} GB of matrices under {work / 'bucket'}", flush=True)
    if "ours" in args.only:
        shutil.rmtree(cache / STATE_DIR, ignore_errors=True)  # each file's MD5 checked again
        first = run_ours(work, "ours-first", cache, args.cores)
        print(json.dumps({"name": "ours, first use of the cache", **first}), flush=True)
    elif "sampling" in args.only:  # warm-up: the metadata verified once, the page cache warm
        run_sampling(work, "sampling-warmup", cache, args.cores)
    results: dict[str, list] = {name: [] for name in args.only}
    for run in range(args.runs):  # in turn: each pair shares the machine's load
        for name in args.only:
            results[name].append(RUNNERS[name](work, f"{name}-{run}", cache, args.cores))
            print(json.dumps({"name": name, "run": run, **results[name][-1]}), flush=True)
    for name in args.only:
        if results[name]:
            print(json.dumps(summary(name, results[name], results.get(ANCHORS.get(name)))))
    if "ours" in args.only and results.get("seed"):
        seed = statistics.median(r["wall_s"] for r in results["seed"])
        ratio = round(first["wall_s"] / seed, 2)
        print(json.dumps({"name": "first use / seed median", "ratio": ratio}))


if __name__ == "__main__":
    main()
