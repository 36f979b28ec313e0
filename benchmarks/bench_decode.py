"""Decode rates of stream mode's chunk filters, per filter, on files as anndata writes them.

    python benchmarks/bench_decode.py [--mb 160] [--runs 3] [--work DIR]

Writes once, under ``--work`` (default ``benchmarks/work/decode``), three matrices whose X
(float32 counts, int32 sorted gene indices, ~``--mb`` MB raw) is chunked as
``AnnData.write_h5ad`` chunks it (h5py's automatic size) and compressed with **gzip**,
**lzf** and **shuffle+gzip**. For each file it reads every stored chunk into memory, then
times, single-threaded (the best of ``--runs``):

- each filter stage alone (zlib, liblzf through python-lzf, the pure-Python LZF decoder on
  a few chunks, numpy's unshuffle), MB/s out of that stage: the figures for
  ``abc.link.decode_mbps``;
- stream mode's whole pipeline (``DatasetLayout.decode``: filters, checks);
- h5py reading the whole dataset from the page cache (HDF5's own C filters), for reference.

Not a test: it prints one JSON line a file and a table.
"""

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from abc_downsample.stream import lzf  # noqa: E402
from abc_downsample.stream.layout import FILTER_NAMES, dataset_layout, unshuffle  # noqa: E402

FILES = {
    "gzip": {"compression": "gzip"},
    "lzf": {"compression": "lzf"},
    "shuffle+gzip": {"compression": "gzip", "shuffle": True},
}
GENES = 32_285
PYTHON_LZF_CHUNKS = 8  # the pure-Python decoder is slow: a few chunks tell its rate


def write_file(path: Path, mb: int, options: dict) -> None:
    import h5py

    rng = np.random.default_rng(5)
    nnz = mb * 10**6 // 8
    lengths = rng.integers(1000, 6000, nnz // 3500)
    nnz = int(lengths.sum())
    indices = np.concatenate([np.sort(rng.choice(GENES, n, replace=False)) for n in lengths])
    data = rng.geometric(0.3, nnz).astype(np.float32)
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        for name, values in (("data", data), ("indices", indices.astype(np.int32))):
            f.create_dataset(name, data=values, chunks=True, maxshape=(None,), **options)
    tmp.replace(path)


def stored_chunks(path: Path, name: str):
    import h5py

    with h5py.File(path) as f:
        dset = f[name]
        layout = dataset_layout(dset)
        raws = [
            dset.id.read_direct_chunk(dset.id.get_chunk_info(i).chunk_offset)[1]
            for i in range(dset.id.get_num_chunks())
        ]
    return layout, raws


def best(runs: int, call) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def stage_rates(layout, raws: list[bytes], runs: int) -> dict:
    """MB/s out of each filter stage alone (the pipeline undone stage by stage)."""
    rates, current = {}, raws
    for code in reversed(layout.filters):
        name = FILTER_NAMES[code]
        if name == "gzip":
            step = zlib.decompress
        elif name == "lzf":
            step = lambda raw: lzf.lzf_decompress(raw, layout.chunk_bytes)  # noqa: E731
        else:
            step = lambda raw: unshuffle(raw, layout.dtype.itemsize)  # noqa: E731
        before = current
        seconds = best(runs, lambda step=step, before=before: [step(r) for r in before])
        current = [step(r) for r in before]
        rates[name] = sum(map(len, current)) / 1e6 / seconds
        if name == "lzf":
            few = before[:PYTHON_LZF_CHUNKS]
            python_s = best(1, lambda few=few: [lzf.lzf_decompress_python(r) for r in few])
            rates["lzf (pure Python)"] = len(few) * layout.chunk_bytes / 1e6 / python_s
    return rates


def measure(path: Path, runs: int) -> dict:
    import h5py

    out = {"file": path.stem, "mb_on_disk": round(path.stat().st_size / 1e6, 1)}
    for name in ("data", "indices"):
        layout, raws = stored_chunks(path, name)
        decoded = len(raws) * layout.chunk_bytes
        whole = best(runs, lambda layout=layout, raws=raws: [
            layout.decode(i, raw) for i, raw in enumerate(raws)])  # fmt: skip
        with h5py.File(path) as f:
            h5 = best(runs, lambda f=f, name=name: f[name][:])
        out[name] = {
            "chunks": len(raws),
            "chunk_kib": round(layout.chunk_bytes / 1024),
            "stages_mbps": {k: round(v) for k, v in stage_rates(layout, raws, runs).items()},
            "stream_pipeline_mbps": round(decoded / 1e6 / whole),
            "h5py_mbps": round(decoded / 1e6 / h5),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=160)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "decode")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"liblzf (python-lzf): {'yes' if lzf._liblzf else 'no'}", flush=True)
    results = []
    for label, options in FILES.items():
        path = args.work / f"x-{args.mb}mb-{label.replace('+', '-')}.h5"
        if not path.exists():
            write_file(path, args.mb, options)
        results.append(measure(path, args.runs))
        print(json.dumps(results[-1]), flush=True)
    print("\n| file | dataset | filter stage | MB/s out | whole pipeline | h5py |")
    print("|---|---|---|---|---|---|")
    for r in results:
        for name in ("data", "indices"):
            d = r[name]
            for stage, rate in d["stages_mbps"].items():
                print(f"| {r['file']} | {name} | {stage} | {rate:,} | "
                      f"{d['stream_pipeline_mbps']:,} | {d['h5py_mbps']:,} |")  # fmt: skip


if __name__ == "__main__":
    main()
