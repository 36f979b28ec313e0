"""Concatenate 10 subsets: our streaming writer against anndata's two ways, at two sizes.

    python benchmarks/bench_concat.py [--fractions 0.05 0.1] [--pieces 10] [--runs 3]
        [--metadata-cells 4042976] [--methods ours release on_disk anndata] [--clean]

Uses bench_subset.py's 100,000-cell, 2.4 GB matrix (generated if missing) and cuts
``--pieces`` disjoint random subsets of ``--fraction`` of its cells each with our subsetter
(10 x 5 % = 1.15 GB of X, 10 x 10 % = 2.3 GB). Then, each run in a fresh process:
- ours: ``concat.concat_subsets`` with the subsets' own obs (the X-streaming core);
- release: ``concat.concat_release``, the whole rule: also reads the sampled cells' rows of
  a cell_metadata.csv of ``--metadata-cells`` rows (the real one has 4,042,976, ~1 GB), as
  the sampling step writes them, joins a taxonomy and gene.csv;
- on_disk: ``anndata.experimental.concat_on_disk``;
- anndata: ``anndata.concat`` of the read subsets, then ``write_h5ad``.
Reports medians of wall time and peak RSS of the child process (/usr/bin/time), and checks
that every output holds the same X as ours. ``--clean`` deletes the subsets and metadata afterwards.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

import bench_subset  # noqa: E402  (the matrix generator)

WORK = HERE / "work" / "concat"
PROVENANCE = {"release": "bench", "variant": "raw", "seed": 1}


def make_subsets(matrix: Path, n_cells: int, fraction: float, pieces: int) -> list[Path]:
    """``pieces`` disjoint subsets of ``fraction`` of the cells each, made by our subsetter."""
    import pandas as pd

    from abc_downsample.subset.local import subset_local_file

    folder = WORK / f"subsets-{fraction}"
    paths = [folder / f"{bench_subset.MATRIX}-{k:02d}.h5ad" for k in range(pieces)]
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    per_piece = int(n_cells * fraction)
    order = np.random.default_rng(11).permutation(n_cells)
    labels = bench_subset.cell_labels(n_cells)
    for k, path in enumerate(paths):
        picked = labels[order[k * per_piece : (k + 1) * per_piece]]
        cells = folder / f"cells-{k:02d}.csv"
        pd.DataFrame({"cell_label": picked, "feature_matrix_label": bench_subset.MATRIX}).to_csv(
            cells, index=False
        )
        subset_local_file(matrix, cells, path, bench_subset.MATRIX)
    return paths


def write_release_tables(paths: list[Path], n_rows: int) -> dict:
    """cells.csv of the subsets' cells; a cell_metadata.csv of ``n_rows`` rows holding them,
    and their rows of it as the sampling step writes them."""
    import h5py
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from abc_downsample.h5ad.tables import read_obs_index
    from abc_downsample.metadata.tables import read_cell_table, write_cell_rows

    folder = paths[0].parent
    labels = []
    for path in paths:
        with h5py.File(path) as f:
            labels.extend(read_obs_index(f))
    pd.DataFrame({"cell_label": labels, "feature_matrix_label": bench_subset.MATRIX}).to_csv(
        folder / "cells.csv", index=False
    )
    metadata = WORK / f"cell_metadata-{n_rows}.csv"
    if not metadata.exists():
        write_cell_metadata(metadata, n_rows)
    table = read_cell_table(metadata)
    sample_rows = folder / "cell_rows.arrow"
    write_cell_rows(table.filter(pc.is_in(table["cell_label"], pa.array(labels))), sample_rows)
    del table
    taxonomy = WORK / "taxonomy.csv"
    pd.DataFrame({
        "cluster_alias": np.arange(1, 5323),
        "neurotransmitter": np.where(np.arange(5322) % 9 == 0, "NA", "Glut"),
        "class": [f"{k % 34:02d} class" for k in range(5322)],
        "subclass": [f"{k % 338:03d} subclass" for k in range(5322)],
        "supertype": [f"{k % 1201:04d} supertype" for k in range(5322)],
        "cluster": [f"{k:04d} cluster" for k in range(5322)],
    }).to_csv(taxonomy, index=False)  # fmt: skip
    genes = WORK / "gene.csv"
    pd.DataFrame({
        "gene_identifier": [f"ENSMUSG{j:011d}" for j in range(bench_subset.N_GENES)],
        "gene_symbol": [f"Gene{j}" for j in range(bench_subset.N_GENES)],
        "name": "a gene", "mapped_ncbi_identifier": "NCBIGene:1", "comment": "",
    }).to_csv(genes, index=False)  # fmt: skip
    return {"cells": folder / "cells.csv", "sample_rows": sample_rows, "taxonomy": taxonomy,
            "genes": genes}  # fmt: skip


def write_cell_metadata(path: Path, n_rows: int, block: int = 500_000) -> None:
    """A cell table with the real columns: the matrix's cells first, then unsampled ones."""
    import pandas as pd

    rng = np.random.default_rng(5)
    n_matrix = 100_000
    tmp = path.with_suffix(".tmp")
    for first in range(0, n_rows, block):
        ids = np.arange(first, min(first + block, n_rows))
        labels = np.where(
            ids < n_matrix,
            bench_subset.cell_labels(n_matrix)[np.minimum(ids, n_matrix - 1)],
            np.char.add("unsampled-", ids.astype(str)).astype(object),
        )
        n = len(ids)
        pd.DataFrame({
            "cell_label": labels, "cell_barcode": "AACGTAACGTAACGTA",
            "barcoded_cell_sample_label": "410_B05", "library_label": "L8TX_201030_01_C12",
            "feature_matrix_label": bench_subset.MATRIX, "entity": "cell",
            "brain_section_label": "", "library_method": "10Xv3",
            "region_of_interest_acronym": rng.choice(["RHP", "MB", "TH"], n),
            "donor_label": "Snap25-IRES2-Cre;Ai14-550850", "donor_genotype": "Ai14(RCL-tdT)/wt",
            "donor_sex": rng.choice(["F", "M"], n), "dataset_label": "WMB-10Xv3",
            "x": rng.random(n).round(6), "y": rng.random(n).round(6),
            "cluster_alias": rng.integers(1, 5323, n),
            "abc_sample_id": "484be5df-2a2b-4f55-9b3f-4bd6d3c9e3a1",
        }).to_csv(tmp, mode="a" if first else "w", header=not first, index=False)  # fmt: skip
    tmp.rename(path)


# -- what runs in the child process ---------------------------------------------------------


def child(method: str, out: str, tables_json: str, *paths: str) -> None:
    start = time.perf_counter()
    if method == "ours":
        import h5py
        import pandas as pd

        from abc_downsample.concat.build import common_var, concat_subsets
        from abc_downsample.h5ad.tables import read_obs

        obs = []
        for path in paths:
            with h5py.File(path) as f:
                obs.append(read_obs(f))
        concat_subsets(list(paths), out, pd.concat(obs), common_var(list(paths)), {})
    elif method == "release":
        from abc_downsample.concat.build import concat_release

        tables = json.loads(tables_json)
        concat_release(list(paths), out, cells_csv=tables["cells"],
                       sample_rows=tables["sample_rows"], taxonomy=tables["taxonomy"],
                       genes=tables["genes"], provenance=PROVENANCE)  # fmt: skip
    elif method == "on_disk":
        from anndata.experimental import concat_on_disk

        concat_on_disk(list(paths), out)
    else:
        import anndata as ad

        ad.concat([ad.read_h5ad(p) for p in paths]).write_h5ad(out)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def run_child(method: str, out: Path, tables: dict, paths: list[Path]) -> dict:
    args = [sys.executable, __file__, "child", method, str(out),
            json.dumps({k: str(v) for k, v in tables.items()}), *map(str, paths)]  # fmt: skip
    return bench_subset.measure(args)


def same_x(a: Path, b: Path, block: int = 1 << 24) -> bool:
    import h5py

    with h5py.File(a) as fa, h5py.File(b) as fb:
        for key in ("data", "indices", "indptr"):
            da, db = fa["X"][key], fb["X"][key]
            if len(da) != len(db):
                return False
            for start in range(0, len(da), block):
                if not np.array_equal(da[start : start + block], db[start : start + block]):
                    return False
    return True


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.1])
    parser.add_argument("--pieces", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--metadata-cells", type=int, default=4_042_976)
    parser.add_argument("--methods", nargs="+", default=["ours", "release", "on_disk", "anndata"])
    parser.add_argument("--clean", action="store_true")
    args = parser.parse_args(argv)

    WORK.mkdir(parents=True, exist_ok=True)
    n_cells = 100_000
    matrix = bench_subset.matrix_path(n_cells, 3000, "contiguous")
    if not matrix.exists():
        bench_subset.WORK.mkdir(parents=True, exist_ok=True)
        bench_subset.generate(matrix, n_cells, 3000, "contiguous")
    for fraction in args.fractions:
        paths = make_subsets(matrix, n_cells, fraction, args.pieces)
        tables = write_release_tables(paths, args.metadata_cells)
        x_gb = sum(p.stat().st_size for p in paths) / 1e9
        print(f"{args.pieces} subsets of {fraction:.0%}: {x_gb:.2f} GB of pieces")
        results = {m: [] for m in args.methods}
        for run in range(args.runs):
            for method in args.methods:
                out = WORK / f"out-{method}.h5ad"
                results[method].append(run_child(method, out, tables, paths))
                print(f"  run {run + 1} {method:8s} {results[method][-1]}")
        for method in args.methods[1:]:
            other = WORK / f"out-{method}.h5ad"
            assert same_x(WORK / f"out-{args.methods[0]}.h5ad", other), f"{method} differs"
        for method, runs in results.items():
            seconds = statistics.median(r["seconds"] for r in runs)
            peak = statistics.median(r["peak_mb"] for r in runs)
            print(f"  median {method:8s} {seconds:6.1f} s  peak RSS {peak:6.0f} MiB")
        for method in args.methods:
            (WORK / f"out-{method}.h5ad").unlink(missing_ok=True)
        if args.clean:
            for path in paths[0].parent.iterdir():
                path.unlink()
            paths[0].parent.rmdir()
    if args.clean:
        for path in WORK.glob("cell_metadata-*.csv"):
            path.unlink()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(*sys.argv[2:5], *sys.argv[5:])
    else:
        main()
