"""Stream mode's overlap of work with the fetch: filtered chunks decoded as their request
arrives (not after the last), and obs/var fetched ahead in parallel batches.

Files are real HDF5 files read through a local directory mirror; results are compared
with h5py reading the same files.
"""

import threading
import tracemalloc

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import stream_settings

from abc_downsample.cache.store import LocalStore
from abc_downsample.errors import AbcError
from abc_downsample.h5ad.tables import read_obs_labels, read_table
from abc_downsample.stream.layout import MAX_REQUEST, dataset_layout, read_elements
from abc_downsample.stream.range_file import CountingStore
from abc_downsample.stream.source import RemoteCsrSource

CHUNK = 10_000  # float32 elements a chunk: 40 KB, random values barely compress


def write_gzip(path, n_chunks: int, chunk: int = CHUNK) -> np.ndarray:
    values = np.random.default_rng(0).random(n_chunks * chunk, dtype=np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("v", data=values, chunks=(chunk,), compression="gzip", shuffle=True)
    return values


def test_each_range_is_handed_over_while_later_ones_are_pending(tmp_path):
    """``each`` runs on the worker as a range arrives: range 1's read waits (bounded) for
    range 0 to have been handed over, which a hand-over after the batch would never do."""
    (tmp_path / "f").write_bytes(bytes(range(256)) * 4)
    handed = threading.Event()

    class WaitingStore(LocalStore):
        def read_range(self, key, start, stop):
            if start > 0 and not handed.wait(timeout=10):
                raise AssertionError("range 0 was not handed over before range 1 ended")
            return super().read_range(key, start, stop)

    def each(i, data):
        if i == 0:
            handed.set()
        return (i, len(data))

    store = WaitingStore(tmp_path)
    got = store.read_ranges("f", [(0, 10), (100, 300)], max_workers=2, each=each)
    assert got == [(0, 10), (1, 200)]


def test_compressed_chunks_are_decoded_and_dropped_as_they_arrive(tmp_path):
    """One value from every other chunk: a small result, many separate requests. Decoded
    on arrival, the compressed chunks are never all held at once."""
    n_chunks = 200
    values = write_gzip(tmp_path / "g.h5", n_chunks)
    store = LocalStore(tmp_path)
    with h5py.File(tmp_path / "g.h5") as f:
        layout = dataset_layout(f["v"])
    starts = np.arange(0, n_chunks, 2) * CHUNK + 7
    compressed = int(layout.sizes[::2].sum())
    tracemalloc.start()
    try:
        (got,) = read_elements([layout], starts, starts + 1, store, "g.h5", 0, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(got, values[starts])
    assert compressed > 3_000_000
    assert peak < compressed / 4


def test_a_chunk_longer_than_a_request_is_joined_then_decoded(tmp_path):
    """A chunk cut into several requests (longer than MAX_REQUEST) is decoded once all its
    pieces are in, alongside chunks decoded as they arrive."""
    chunk = MAX_REQUEST // 3  # float32: 4/3 MAX_REQUEST bytes, ~1.1 compressed
    values = write_gzip(tmp_path / "big.h5", 2, chunk)
    with h5py.File(tmp_path / "big.h5") as f:
        layout = dataset_layout(f["v"])
    assert layout.sizes.max() > MAX_REQUEST
    starts, stops = np.array([5, chunk + 3]), np.array([chunk + 1, 2 * chunk])
    (got,) = read_elements([layout], starts, stops, LocalStore(tmp_path), "big.h5", 0, 4)
    assert np.array_equal(got, np.concatenate([values[5 : chunk + 1], values[chunk + 3 :]]))


def test_a_damaged_chunk_fails_in_one_line_while_decoded_on_a_worker(tmp_path):
    write_gzip(tmp_path / "g.h5", 20)
    with h5py.File(tmp_path / "g.h5") as f:
        layout = dataset_layout(f["v"])
    raw = bytearray((tmp_path / "g.h5").read_bytes())
    raw[int(layout.offsets[13]) + 100] ^= 0xFF
    (tmp_path / "g.h5").write_bytes(bytes(raw))
    starts = np.arange(20) * CHUNK
    with pytest.raises(AbcError, match="chunk 13 of /v does not decode") as err:
        read_elements([layout], starts, starts + 5, LocalStore(tmp_path), "g.h5", 0, 4)
    assert "\n" not in str(err.value)


def write_h5ad(path, n_cells: int = 20_000, n_genes: int = 3_000) -> None:
    """An h5ad as anndata writes it: string index, a string and a categorical obs column,
    var with a string column (their strings fill many global heap collections)."""
    rng = np.random.default_rng(1)
    labels = [f"AAACCTGAGAAACCAT-{i}-cell-label" for i in range(n_cells)]
    obs = pd.DataFrame(
        {
            "cell_barcode": [label[:16] for label in labels],
            "library_label": pd.Categorical(rng.choice(["L8TX_1", "L8TX_2"], n_cells)),
        },
        index=pd.Index(labels, name="cell_label"),
    )
    genes = [f"ENSMUSG{i:011d}" for i in range(n_genes)]
    var = pd.DataFrame(
        {"gene_symbol": [f"Gene{i}" for i in range(n_genes)]},
        index=pd.Index(genes, name="gene_identifier"),
    )
    x = sp.random(n_cells, n_genes, density=0.01, format="csr", dtype=np.float32, rng=rng)
    ad.AnnData(X=x, obs=obs, var=var).write_h5ad(path)


def test_obs_and_var_are_read_from_what_opening_fetched(tmp_path):
    """After the open, obs labels, obs rows and var cost no request: h5py read them miss by
    miss, a round trip each (27 on the benchmark's file), before they were fetched ahead."""
    write_h5ad(tmp_path / "m.h5ad")
    store = CountingStore(LocalStore(tmp_path))
    with h5py.File(tmp_path / "m.h5ad") as local:
        want_labels = read_obs_labels(local)
        rows = np.arange(0, len(want_labels), 13)
        want_obs = read_table(local["obs"], rows, "cell_label")
        want_var = read_table(local["var"], None, "gene_identifier")
    with RemoteCsrSource(store, "m.h5ad", **stream_settings()) as remote:
        opened = store.stats.requests
        labels = read_obs_labels(remote.h5)
        obs = read_table(remote.h5["obs"], rows, "cell_label")
        var = read_table(remote.h5["var"], None, "gene_identifier")
        assert store.stats.requests == opened
    assert np.array_equal(labels, want_labels)
    for got, want in ((obs, want_obs), (var, want_var)):
        assert np.array_equal(got.index, want.index)
        assert got.columns.keys() == want.columns.keys()
        for name, column in got.columns.items():
            assert np.array_equal(column.values, want.columns[name].values)
            assert np.array_equal(column.categories, want.columns[name].categories)
    assert len(obs.columns) == 2 and len(var.columns) == 1
