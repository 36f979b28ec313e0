"""Subset one big matrix: our row reader against anndata's whole-file load + index.

    python benchmarks/bench_subset.py [--cells 100000] [--nnz 3000] [--fraction 0.05]
        [--layout contiguous|chunked|gzip] [--runs 3] [--clean]

Generates (once, cached in benchmarks/work/subset/) an h5ad shaped like the real files:
32,285 genes, ``--nnz`` non-zeros a cell on average (uniform in [nnz/3, 5 nnz/3]),
float32 counts + int32 indices, obs with barcodes and two categoricals; 100,000 cells give
2.4 GB. Picks a random ``--fraction`` of the cells, in random order, plus extra labels of
another matrix in the cells CSV, then alternates, each in a fresh process:
- ours: ``subset.subset_local_file`` (indptr, selected row runs, bounded batches);
- anndata: ``anndata.read_h5ad(path)[labels].copy()`` then ``write_h5ad``.
Reports medians of wall time and peak RSS (of the whole child process, by /usr/bin/time)
and checks both outputs hold the same X. The file is read once first so both run on a
warm page cache. ``--clean`` deletes the generated matrix afterwards.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "subset"
sys.path.insert(0, str(HERE.parent / "scripts"))

N_GENES = 32285
MATRIX = "WMB-10Xv3-BENCH"
BLOCK_ROWS = 2000


def cell_labels(n_cells: int) -> np.ndarray:
    return np.array([f"{i:07d}-AACGT{i % 97:02d}-bench" for i in range(n_cells)], dtype=object)


def matrix_path(n_cells: int, nnz: int, layout: str) -> Path:
    return WORK / f"matrix-{n_cells}x{nnz}-{layout}.h5ad"


def generate(path: Path, n_cells: int, nnz: int, layout: str, seed: int = 7) -> None:
    """Write the test matrix row block by row block (never whole in memory)."""
    import anndata as ad
    import h5py
    import pandas as pd

    rng = np.random.default_rng(seed)
    lengths = rng.integers(nnz // 3, 5 * nnz // 3, n_cells)
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    obs = pd.DataFrame(
        {
            "cell_barcode": [f"AACGT{i:011d}" for i in range(n_cells)],
            "library_label": pd.Categorical(
                rng.choice([f"L8TX_{k:03d}" for k in range(60)], n_cells)
            ),  # fmt: skip
            "anatomical_division_label": pd.Categorical(rng.choice(["MB", "TH", "HY"], n_cells)),
        },
        index=pd.Index(cell_labels(n_cells), name="cell_label"),
    )
    var = pd.DataFrame(
        {"gene_symbol": [f"Gene{j}" for j in range(N_GENES)]},
        index=pd.Index([f"ENSMUSG{j:011d}" for j in range(N_GENES)], name="gene_identifier"),
    )
    tmp = path.with_suffix(".tmp")
    ad.AnnData(obs=obs, var=var, uns={"normalization": "raw"}).write_h5ad(tmp)
    options = {
        "contiguous": {},
        "chunked": {"chunks": (1 << 18,)},
        "gzip": {"chunks": (1 << 18,), "compression": "gzip", "compression_opts": 1},
    }[layout]
    with h5py.File(tmp, "r+") as f:
        group = f.create_group("X")
        group.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
        group.attrs["shape"] = np.array([n_cells, N_GENES])
        data = group.create_dataset("data", (indptr[-1],), np.float32, **options)
        indices = group.create_dataset("indices", (indptr[-1],), np.int32, **options)
        group.create_dataset("indptr", data=indptr)
        for first in range(0, n_cells, BLOCK_ROWS):
            last = min(first + BLOCK_ROWS, n_cells)
            cols = [np.sort(rng.choice(N_GENES, n, replace=False)) for n in lengths[first:last]]
            block = np.s_[indptr[first] : indptr[last]]
            indices[block] = np.concatenate(cols).astype(np.int32)
            data[block] = rng.geometric(0.4, indptr[last] - indptr[first]).astype(np.float32)
    tmp.rename(path)


def write_cells(path: Path, n_cells: int, fraction: float, seed: int = 3) -> int:
    """A downsampled_cells.csv: a random fraction, in random order, plus other matrices' cells."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    picked = rng.permutation(n_cells)[: int(n_cells * fraction)]
    mine = pd.DataFrame(
        {"cell_label": cell_labels(n_cells)[picked], "feature_matrix_label": MATRIX}
    )
    other = pd.DataFrame({"cell_label": [f"other-{i}" for i in range(len(picked))],
                          "feature_matrix_label": "WMB-10Xv2-TH"})  # fmt: skip
    table = pd.concat([mine, other]).sample(frac=1, random_state=seed)
    table["cluster_alias"] = rng.integers(1, 5322, len(table))
    table.to_csv(path, index=False)
    return len(picked)


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


# -- what runs in the child process ---------------------------------------------------------


def child(method: str, matrix: str, cells: str, out: str) -> None:
    start = time.perf_counter()
    if method == "ours":
        from abc_downsample.subset.local import subset_local_file

        subset_local_file(matrix, cells, out, MATRIX)
    else:
        import anndata as ad
        import pandas as pd

        table = pd.read_csv(cells, dtype=str)
        labels = table.loc[table["feature_matrix_label"] == MATRIX, "cell_label"].tolist()
        ad.read_h5ad(matrix)[labels].copy().write_h5ad(out)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def measure(command: list[str]) -> dict:
    """Run ``command`` under /usr/bin/time: its wall seconds (printed) and peak RSS.

    Not ``ru_maxrss`` of a direct child: Linux carries the parent's high-water mark across
    vfork+exec, which would credit the child with this process's memory.
    """
    result = subprocess.run(["/usr/bin/time", "-f", "peak_kb=%M", *command],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode:
        raise SystemExit(f"{command[2:4]} failed:\n{result.stderr[-3000:]}")
    peak_kb = int(result.stderr.strip().splitlines()[-1].split("=")[1])
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return {"seconds": round(measured["seconds"], 2), "peak_mb": round(peak_kb / 1024)}


def run_child(*args: str) -> dict:
    return measure([sys.executable, __file__, "child", *args])


# -- the comparison ---------------------------------------------------------------------------


def selected_bytes(matrix: Path, cells: Path) -> int:
    """Bytes of the sampled rows' values and indices, from the file's labels and indptr."""
    import h5py
    import pandas as pd

    labels = pd.read_csv(cells, usecols=["cell_label"])["cell_label"]
    with h5py.File(matrix) as f:
        index = pd.Index(f["obs"][f["obs"].attrs["_index"]][:].astype(str))
        indptr = f["X/indptr"][:]
        per_nnz = f["X/data"].dtype.itemsize + f["X/indices"].dtype.itemsize
    rows = index.get_indexer(labels)
    rows = rows[rows >= 0]
    return int((indptr[rows + 1] - indptr[rows]).sum()) * per_nnz


def same_x(a: Path, b: Path) -> bool:
    import h5py

    with h5py.File(a) as fa, h5py.File(b) as fb:
        return all(np.array_equal(fa["X"][k][:], fb["X"][k][:]) for k in ("data", "indices"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--nnz", type=int, default=3000)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--layout", choices=["contiguous", "chunked", "gzip"], default="contiguous")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clean", action="store_true")
    args = parser.parse_args(argv)

    WORK.mkdir(parents=True, exist_ok=True)
    matrix = matrix_path(args.cells, args.nnz, args.layout)
    if not matrix.exists():
        start = time.perf_counter()
        generate(matrix, args.cells, args.nnz, args.layout)
        print(f"generated {matrix.name} in {time.perf_counter() - start:.0f} s")
    cells = WORK / f"cells-{args.fraction}.csv"
    n_picked = write_cells(cells, args.cells, args.fraction)
    rows_mb = selected_bytes(matrix, cells) / 2**20
    print(f"{matrix.name}: {matrix.stat().st_size / 1e9:.2f} GB; {n_picked:,} cells picked, "
          f"selected rows {rows_mb:.0f} MiB")  # fmt: skip
    warm(matrix)

    results = {"ours": [], "anndata": []}
    for run in range(args.runs):
        for method in results:
            out = WORK / f"out-{method}.h5ad"
            results[method].append(run_child(method, str(matrix), str(cells), str(out)))
            print(f"run {run + 1} {method:8s} {results[method][-1]}")
    assert same_x(WORK / "out-ours.h5ad", WORK / "out-anndata.h5ad"), "outputs differ"

    medians = {
        m: {k: statistics.median(r[k] for r in runs) for k in ("seconds", "peak_mb")}
        for m, runs in results.items()
    }
    ours, plain = medians["ours"], medians["anndata"]
    print(f"median ours:    {ours['seconds']:.1f} s, peak RSS {ours['peak_mb']:.0f} MiB")
    print(f"median anndata: {plain['seconds']:.1f} s, peak RSS {plain['peak_mb']:.0f} MiB")
    print(f"budget 300 MiB + 2 x selected = {300 + 2 * rows_mb:.0f} MiB; "
          f"memory ratio {plain['peak_mb'] / ours['peak_mb']:.1f}x; "
          f"time ratio {plain['seconds'] / ours['seconds']:.1f}x")  # fmt: skip
    for method in results:
        (WORK / f"out-{method}.h5ad").unlink(missing_ok=True)
    if args.clean:
        matrix.unlink()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(*sys.argv[2:6])
    else:
        main()
