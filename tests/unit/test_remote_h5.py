"""Stream mode's reader: byte-range planning, the block-cached file, RemoteCsrSource.

Remote reads go to a real moto S3 server on 127.0.0.1 (behind the fault proxy, which
counts the bytes it serves) and to a local directory mirror; results are compared with
h5py reading the same files locally.
"""

import gc
import threading

import anndata as ad
import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import store_of, stream_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from s3_server import BUCKET, MotoServer, upload_tree

from abc_downsample.cache.store import LocalStore
from abc_downsample.errors import AbcError
from abc_downsample.h5ad.csr import H5CsrSource, read_rows
from abc_downsample.stream.byte_ranges import chunks_touched, plan_requests
from abc_downsample.stream.layout import unshuffle
from abc_downsample.stream.range_file import READ_AHEAD, CountingStore, RangeFile
from abc_downsample.stream.source import RemoteCsrSource

PREFIX = "expression_matrices/WMB-test/20230630/"
N_ROWS, N_COLS = 1200, 3000

# name -> h5py create_dataset options for X/data and X/indices
LAYOUTS = {
    "contiguous": {},
    "gzip": {"chunks": (5000,), "compression": "gzip", "compression_opts": 4},
    "shuffle-gzip-fletcher": {
        "chunks": (777,),
        "compression": "gzip",
        "shuffle": True,
        "fletcher32": True,
    },
    "chunked-raw": {"chunks": (4096,)},
    "lzf": {"chunks": (3000,), "compression": "lzf"},  # decoded by our abc_downsample.stream.lzf
}


# -- test files -----------------------------------------------------------------------------


def random_csr(seed: int) -> sp.csr_matrix:
    """Counts with uneven rows (some empty), like single-cell data."""
    rng = np.random.default_rng(seed)
    per_row = rng.integers(0, 120, N_ROWS)
    per_row[rng.choice(N_ROWS, 40, replace=False)] = 0
    indptr = np.r_[0, np.cumsum(per_row)]
    indices = np.concatenate(
        [np.sort(rng.choice(N_COLS, n, replace=False)) for n in per_row]
    ).astype(np.int32)
    data = rng.integers(1, 500, indptr[-1]).astype(np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(N_ROWS, N_COLS))


def write_csr_h5ad(path, matrix: sp.csr_matrix, options: dict) -> None:
    """An h5ad-shaped file: X as an anndata CSR group plus a small obs group."""
    with h5py.File(path, "w") as f:
        x = f.create_group("X")
        x.attrs["encoding-type"] = "csr_matrix"
        x.attrs["encoding-version"] = "0.1.0"
        x.attrs["shape"] = np.array(matrix.shape, dtype=np.int64)
        x.create_dataset("data", data=matrix.data, **options)
        x.create_dataset("indices", data=matrix.indices, **options)
        indptr = matrix.indptr.astype(np.int64)
        if "chunks" in options:  # a chunk may not exceed the dataset
            options = {**options, "chunks": (min(options["chunks"][0], len(indptr)),)}
        x.create_dataset("indptr", data=indptr, **options)
        labels = np.array([f"cell-{i}" for i in range(matrix.shape[0])], dtype=object)
        f.create_dataset("obs/cell_label", data=labels, dtype=h5py.string_dtype())


@pytest.fixture(scope="module")
def matrix():
    return random_csr(3)


@pytest.fixture(scope="module")
def files(tmp_path_factory, matrix):
    """{layout name: local path}, all under one mirror directory with the bucket layout."""
    root = tmp_path_factory.mktemp("mirror")
    (root / PREFIX).mkdir(parents=True)
    paths = {}
    for name, options in LAYOUTS.items():
        paths[name] = root / PREFIX / f"{name}.h5ad"
        write_csr_h5ad(paths[name], matrix, options)
    # scale-offset: a filter HDF5 has and stream mode does not decode
    scaleoffset = {"scaleoffset": 0, "chunks": (3000,)}
    write_csr_h5ad(root / PREFIX / "scaleoffset.h5ad", matrix, scaleoffset)
    return root, paths


@pytest.fixture(scope="module")
def s3(files):
    server = MotoServer()
    try:
        upload_tree(server.url, files[0])
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["s3", "local"])
def store(request, files):
    if request.param == "local":
        return store_of(str(files[0]))
    proxy = request.getfixturevalue("proxy")
    proxy.reset()
    return store_of(BUCKET, proxy.url)


def key_of(name: str) -> str:
    return f"{PREFIX}{name}.h5ad"


# -- range planning -------------------------------------------------------------------------

range_lists = st.lists(
    st.tuples(st.integers(0, 5000), st.integers(0, 400)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ranges=range_lists, gap=st.integers(0, 300), cap=st.integers(1, 900))
def test_plan_covers_every_range_and_gather_cuts_it_back(ranges, gap, cap):
    blob = np.random.default_rng(len(ranges)).integers(0, 256, 6000).astype(np.uint8)
    starts = np.array([a for a, _ in ranges], dtype=np.int64)
    stops = np.array([b for _, b in ranges], dtype=np.int64)
    plan = plan_requests(starts, stops, gap, cap)
    req = plan.requests
    assert np.all(req[:, 1] > req[:, 0])
    assert np.all(req[1:, 0] >= req[:-1, 1])  # sorted, disjoint
    assert np.all(req[:, 1] - req[:, 0] <= cap)
    fetched = [blob[a:b].tobytes() for a, b in req]
    expected = [blob[a:b] for a, b in ranges]
    got = plan.gather(fetched, starts, stops)
    assert np.array_equal(got, np.concatenate(expected) if expected else blob[:0])
    # merging only ever adds the gaps it bridged: at most `gap` bytes between requests
    wanted = np.zeros(6000, dtype=bool)
    for a, b in ranges:
        wanted[a:b] = True
    assert plan.nbytes <= wanted.sum() + gap * max(0, len(ranges) - 1)


def test_plan_merges_neighbours_within_the_gap_only():
    plan = plan_requests(
        [0, 150, 1000, 1010], [100, 200, 1005, 1020], merge_gap=50, max_request=10**6
    )
    assert plan.requests.tolist() == [[0, 200], [1000, 1020]]
    # a cap smaller than the merged span keeps them apart, and long ranges are cut
    plan = plan_requests([0, 150], [100, 200], merge_gap=50, max_request=120)
    assert plan.requests.tolist() == [[0, 100], [150, 200]]
    plan = plan_requests([0], [250], merge_gap=0, max_request=100)
    assert plan.requests.tolist() == [[0, 100], [100, 200], [200, 250]]


@settings(max_examples=200, deadline=None)
@given(ranges=range_lists, chunk=st.integers(1, 700))
def test_chunks_touched_matches_a_brute_force_scan(ranges, chunk):
    expected = sorted({e // chunk for a, b in ranges for e in range(a, b)})
    starts = [a for a, _ in ranges]
    stops = [b for _, b in ranges]
    assert chunks_touched(starts, stops, chunk).tolist() == expected


def test_unshuffle_inverts_hdf5_byte_shuffle():
    values = np.arange(1000, 1100, dtype=np.int32)
    shuffled = values.view(np.uint8).reshape(-1, 4).T.tobytes()  # byte planes, as HDF5 does
    assert np.array_equal(np.frombuffer(unshuffle(shuffled, 4), np.int32), values)


# -- the file object ------------------------------------------------------------------------


def test_range_file_reads_like_the_local_file(store, files):
    path = files[1]["gzip"]
    local = path.read_bytes()
    rf = RangeFile(store, key_of("gzip"), len(local), block=4096)
    rng = np.random.default_rng(1)
    starts, sizes = rng.integers(0, len(local), 25), rng.integers(1, 20000, 25)
    for start, n in zip(starts.tolist(), sizes.tolist(), strict=True):
        rf.seek(start)
        got = rf.read(n)
        assert got == local[start : start + n]
        assert rf.tell() == start + len(got)
    rf.seek(-10, 2)
    assert rf.read() == local[-10:]
    assert rf.read(5) == b""


def test_range_file_reads_ahead_on_sequential_misses_and_stays_bounded(files):
    """A walk through the file in small reads costs a few growing requests, not one a block."""
    root, paths = files
    local = paths["contiguous"].read_bytes()
    counting = CountingStore(store_of(str(root)))
    block = 512
    rf = RangeFile(counting, key_of("contiguous"), len(local), block=block, cache_bytes=0)
    pieces = [rf.read(700) for _ in range(-(-len(local) // 700))]
    assert b"".join(pieces) == local
    n_blocks = -(-len(local) // block)
    assert n_blocks > 1000
    assert counting.stats.requests <= 8 + n_blocks // READ_AHEAD  # 1, 2, 4 ... 64 blocks
    assert counting.stats.bytes == len(local)  # nothing fetched twice
    assert len(rf._cache) <= 2 * READ_AHEAD


# -- RemoteCsrSource ------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_remote_rows_are_identical_to_local_h5py(store, files, layout):
    rows = np.random.default_rng(5).permutation(N_ROWS)[:300]
    runs = [(0, 3), (10, 11), (500, 640), (N_ROWS - 2, N_ROWS)]
    with (
        h5py.File(files[1][layout]) as f,
        RemoteCsrSource(store, key_of(layout), **stream_settings(merge_gap=256)) as remote,
    ):
        local = H5CsrSource(f["X"])
        assert (remote.n_rows, remote.n_cols) == (local.n_rows, local.n_cols)
        assert (remote.dtype, remote.indices_dtype) == (local.dtype, local.indices_dtype)
        assert np.array_equal(remote.indptr, local.indptr)
        for got, want in zip(remote.read_runs(runs), local.read_runs(runs), strict=True):
            assert got.dtype == want.dtype and np.array_equal(got, want)
        got, want = read_rows(remote, rows), read_rows(local, rows)
        for part in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(got, part), getattr(want, part))
        # obs is readable through the block-cached file object
        assert remote.h5["obs/cell_label"][7] == b"cell-7"


def test_row_bytes_fetched_are_bounded_by_the_selection(proxy, files, matrix):
    """5 % of the rows: the proxy serves the selected bytes plus bridged gaps, no more."""
    store = store_of(BUCKET, proxy.url)
    rows = np.sort(np.random.default_rng(9).choice(N_ROWS, N_ROWS // 20, replace=False))
    gap = 512
    with RemoteCsrSource(store, key_of("contiguous"), **stream_settings(merge_gap=gap)) as remote:
        proxy.reset()
        before = remote.stats.bytes
        read_rows(remote, rows)
        served, requests = proxy.bytes_served, proxy.requests
        assert served == remote.stats.bytes - before  # our count is what went over the wire
    nnz = matrix.indptr[rows + 1] - matrix.indptr[rows]
    selected = int(nnz.sum()) * (4 + 4)
    assert selected <= served <= selected + 2 * gap * len(rows)
    assert requests <= 2 * len(rows)
    total = (4 + 4) * matrix.nnz
    assert served < total / 5


def test_transient_errors_are_retried(proxy, files, matrix):
    proxy.reset()
    proxy.fail_first = 2  # every key's first two answers are 500/503
    store = store_of(BUCKET, proxy.url, retries=4)
    rows = np.arange(0, N_ROWS, 7)
    with RemoteCsrSource(store, key_of("gzip"), **stream_settings()) as remote:
        got = read_rows(remote, rows)
    assert np.array_equal(got.toarray(), matrix[rows].toarray())
    proxy.reset()


def test_unknown_compression_is_refused_in_one_line(store):
    with pytest.raises(AbcError, match=r"scale.*abc.transfer: download") as err:
        RemoteCsrSource(store, key_of("scaleoffset"), **stream_settings())
    assert "\n" not in str(err.value)


def test_a_file_that_is_not_hdf5_is_refused(tmp_path):
    (tmp_path / "x.h5ad").write_bytes(b"not an hdf5 file" * 100)
    with pytest.raises(AbcError, match="not a readable HDF5 file"):
        RemoteCsrSource(store_of(str(tmp_path)), "x.h5ad", **stream_settings())


def test_summary_names_bytes_requests_and_size(store):
    with RemoteCsrSource(store, key_of("contiguous"), **stream_settings()) as remote:
        remote.read_runs([(0, 50)])
        line = remote.summary()
    assert f"{remote.stats.requests:,} requests" in line
    assert f"{remote.size / 1e6:,.1f} MB file" in line


# -- h5py never waits on another thread ------------------------------------------------------


class ThreadRecordingStore(LocalStore):
    """A local mirror that records which thread sent each read, and whether the garbage
    collector could run then."""

    def __init__(self, root):
        super().__init__(root)
        self.reads: list[tuple[str, bool]] = []

    def read_range(self, key, start, stop):
        self.reads.append((threading.current_thread().name, gc.isenabled()))
        return super().read_range(key, start, stop)


def test_no_worker_thread_can_need_h5pys_lock_while_h5py_waits(tmp_path, matrix):
    """h5py holds its global lock while it reads through the file object: a worker thread
    it waited on could need that lock (garbage collection of an h5py object), a deadlock.
    So a read made inside h5py runs on the calling thread, or on workers with the garbage
    collector off (the parallel fetch of chunk-index nodes)."""
    ad.AnnData(sp.vstack([matrix] * 12).tocsr()).write_h5ad(tmp_path / "m.h5ad")
    store = ThreadRecordingStore(tmp_path)
    main = threading.current_thread().name
    rf = RangeFile(store, "m.h5ad", store.size("m.h5ad"), block=512, max_workers=4)
    with h5py.File(rf, "r") as f:
        f["X/data"][:]  # many blocks at once: a multi-request read
        f["X/indices"].id.chunk_iter(lambda info: None)  # a chunk index of many nodes
        f["obs/_index"][:]
    on_workers = [enabled for thread, enabled in store.reads if thread != main]
    assert on_workers  # the index nodes were fetched in parallel ...
    assert not any(on_workers)  # ... with the collector off
    assert len(store.reads) > len(on_workers) + 1


# -- exact ranges inside unfiltered chunks ----------------------------------------------------


@pytest.mark.parametrize("layout", ["chunked-raw", "anndata"])
def test_unfiltered_chunks_are_read_by_exact_ranges(files, matrix, tmp_path, layout):
    """A chunk without filters is a plain slice: only the selected rows' bytes are fetched
    (merge gap 0), not the chunks around them."""
    root, paths = files
    if layout == "anndata":  # as AnnData.write_h5ad writes X: h5py's automatic chunks
        (root / PREFIX / "anndata.h5ad").unlink(missing_ok=True)
        ad.AnnData(matrix).write_h5ad(root / PREFIX / "anndata.h5ad")
    rows = np.sort(np.random.default_rng(4).choice(N_ROWS, N_ROWS // 20, replace=False))
    settings = stream_settings(merge_gap=0)
    with RemoteCsrSource(store_of(str(root)), key_of(layout), **settings) as remote:
        assert remote.layouts[0].chunk_len < matrix.nnz  # chunked indeed
        before = remote.stats.bytes
        got = read_rows(remote, rows)
        fetched = remote.stats.bytes - before
    assert np.array_equal(got.toarray(), matrix[rows].toarray())
    assert fetched == remote.selected_bytes(rows)


def test_fletcher32_is_checked(files):
    from abc_downsample.stream.layout import check_fletcher32

    with h5py.File(files[1]["shuffle-gzip-fletcher"]) as f:
        dset = f["X/data"]
        _mask, raw = dset.id.read_direct_chunk((0,))
    assert check_fletcher32(raw) == raw[:-4]
    damaged = raw[:10] + bytes([raw[10] ^ 0x01]) + raw[11:]
    with pytest.raises(ValueError, match="fletcher32"):
        check_fletcher32(damaged)


@pytest.mark.parametrize("layout", ["gzip", "chunked-raw", "contiguous"])
def test_plan_counts_the_compressed_chunks_decoded(files, matrix, layout):
    """auto's plan: stream decodes every compressed chunk the rows touch, whole; an
    unfiltered or contiguous file decodes nothing."""
    root, paths = files
    rows = np.sort(np.random.default_rng(5).choice(N_ROWS, N_ROWS // 20, replace=False))
    settings = stream_settings(merge_gap=0)
    with RemoteCsrSource(store_of(str(root)), key_of(layout), **settings) as remote:
        plan = remote.plan_rows(rows)
        before = remote.stats.bytes, remote.stats.requests
        read_rows(remote, rows)
        fetched = remote.stats.bytes - before[0], remote.stats.requests - before[1]
    assert (plan.nbytes, plan.requests) == fetched  # the plan is what is then fetched
    with h5py.File(paths[layout]) as f:
        chunked = f["X/data"].compression is not None
        chunk_len = f["X/data"].chunks[0] if chunked else 0
    if not chunked:
        assert plan.decoded_bytes == 0
        return
    touched = chunks_touched(matrix.indptr[rows], matrix.indptr[rows + 1], chunk_len)
    assert plan.decoded_bytes == len(touched) * chunk_len * (4 + 4)
