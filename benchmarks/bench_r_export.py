"""The R export (10x HDF5 + CSVs) of a result of real width: time and peak memory.

    python benchmarks/bench_r_export.py [--cells 100000] [--nnz-per-cell 2000]
        [--compression gzip1 none] [--clean]

Writes a result h5ad of ``--cells`` x 32,285 genes (float32 counts, int32 indices, written
block by block) with obs, the atlas UMAP and colours, then, each in a fresh process:
- ours: ``r_export.export_for_r`` (X copied in blocks), per ``--compression``: ``none``
  (the rule's) or ``gzip<level>``;
- read_h5ad: ``anndata.read_h5ad`` of the result, what any whole-matrix conversion starts with.
Reports wall time and peak RSS of the child (/usr/bin/time) and the size of matrix.h5.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))

WORK = HERE / "work" / "r_export"
N_GENES = 32_285
BLOCK_CELLS = 5_000


def make_result(path: Path, n_cells: int, per_cell: int) -> None:
    from abc_downsample.h5ad.writer import csr_h5ad_writer

    rng = np.random.default_rng(3)
    labels = [f"cell-{i:07d}" for i in range(n_cells)]
    classes = np.array([f"{k:02d} class" for k in range(34)])
    obs = pd.DataFrame(
        {"x": rng.normal(size=n_cells), "y": rng.normal(size=n_cells),
         "class": pd.Categorical(classes[rng.integers(0, 34, n_cells)])},
        index=pd.Index(labels, name="cell_label"),
    )  # fmt: skip
    var = pd.DataFrame({"gene_symbol": [f"Gene{j}" for j in range(N_GENES)]},
                       index=pd.Index([f"ENSMUSG{j:011d}" for j in range(N_GENES)],
                                      name="gene_identifier"))  # fmt: skip
    uns = {"class_colors": [f"#{k:02d}{k:02d}{k:02d}" for k in range(34)]}
    obsm = {"X_umap": obs[["x", "y"]].to_numpy()}
    nnz = n_cells * per_cell
    with csr_h5ad_writer(path, obs, var, uns, nnz, np.float32, np.int32, obsm) as writer:
        for start in range(0, n_cells, BLOCK_CELLS):
            rows = min(BLOCK_CELLS, n_cells - start)
            cols = np.sort(rng.integers(0, N_GENES, (rows, per_cell), dtype=np.int32), axis=1)
            values = rng.integers(1, 30, rows * per_cell).astype(np.float32)
            writer.append(values, cols.ravel(), np.arange(rows + 1, dtype=np.int64) * per_cell)


CHILD = {
    "ours": """
import sys; sys.path.insert(0, {scripts!r})
from abc_downsample.export import r_export
level = None if {compression!r} == "none" else int({compression!r}.removeprefix("gzip"))
r_export.export_for_r({result!r}, h5={out!r} + "/matrix.h5", cells={out!r} + "/cells.csv",
                      umap={out!r} + "/umap.csv", colors={out!r} + "/colors.csv",
                      levels={out!r} + "/levels.csv", gzip_level=level)
""",
    "read_h5ad": "import anndata; anndata.read_h5ad({result!r})",
}


def measure(method: str, result: Path, compression: str) -> dict:
    out = WORK / f"out-{compression}"
    out.mkdir(parents=True, exist_ok=True)
    code = CHILD[method].format(scripts=str(HERE.parent / "scripts"), result=str(result),
                                out=str(out), compression=compression)  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=3600, check=True)  # fmt: skip
    seconds = time.perf_counter() - started
    peak_mib = int(done.stderr.strip().splitlines()[-1]) / 1024
    row = {"method": method, "seconds": round(seconds, 1), "peak_mib": round(peak_mib)}
    if method == "ours":
        row["compression"] = compression
        row["matrix_h5_mb"] = round((out / "matrix.h5").stat().st_size / 1e6)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--nnz-per-cell", type=int, default=2_000)
    parser.add_argument("--compression", nargs="+", default=["none", "gzip1"])
    parser.add_argument("--clean", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    result = WORK / f"result-{args.cells}-{args.nnz_per_cell}.h5ad"
    if not result.exists():
        make_result(result, args.cells, args.nnz_per_cell)
    print(json.dumps({"result_gb": round(result.stat().st_size / 1e9, 2),
                      "nnz": args.cells * args.nnz_per_cell}))  # fmt: skip
    for compression in args.compression:
        print(json.dumps(measure("ours", result, compression)), flush=True)
    print(json.dumps(measure("read_h5ad", result, "-")), flush=True)
    if args.clean:
        import shutil

        shutil.rmtree(WORK)


if __name__ == "__main__":
    main()
