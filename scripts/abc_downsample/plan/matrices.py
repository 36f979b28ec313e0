"""What getting one needed matrix will cost, before the run: bytes, requests and the link
model's seconds per transfer mode, and auto's choice.

What is read, estimated or known (the plan says it in one line, ``HOW``):

- read: each matrix's HDF5 headers and X's chunk index, through stream mode's own reader
  (a few small requests a file, from the cached copy where there is one): its rows and
  non-zeros, value and index types, X's layout, chunks and filters, where ``indptr``, obs
  and var are stored. Stream mode reads the same when it opens the file;
- estimated: which rows the sample takes. The matrix's selected cells are taken as spread
  at random over the file's rows, every row of the mean size, and stream mode's planner
  turns those rows into requests and bytes (merged gaps, chunk borders, whole gzip chunks).
  Where the strings of obs and var lie (HDF5 heaps) comes from the first and last
  references of each string dataset;
- known: a download's bytes (the manifest's size) and what the cache holds.

Time is what a job waits for the bucket at ``abc.link`` (its local work aside): round trips
one after another while h5py opens the file, batches in parallel after.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from abc_downsample.h5ad.csr import check_csr_group
from abc_downsample.stream.layout import (
    HEAP_GUESS,
    VLEN_REF,
    ChunkedLayout,
    ContiguousLayout,
    dataset_layout,
    heap_ranges,
    is_vlen_strings,
    plan_elements,
    stored_ranges,
)
from abc_downsample.stream.plan import Choice, Link, choose_rows, reads_the_cache
from abc_downsample.stream.range_file import CountingStore, RangeFile
from abc_downsample.stream.source import RowsPlan, plan_rows, table_datasets

HOW = (
    "read: the manifest, the cache, each matrix's HDF5 headers and chunk index; estimated: "
    "which rows (the selected cells spread at random over a file's rows, rows of mean size) "
    "and the obs/var strings"
)
HOW_MANIFEST = (
    "read: the manifest, the cache and the cell table; estimated (abc.transfer: download reads "
    "no header of a matrix it has not fetched): each file's X as its size beside an obs of "
    "~120 bytes a cell in two plain halves, rows of mean size spread at random"
)
SEED = 0  # of the simulated rows: the same plan for the same sample
ENDS = 64  # references read at each end of a string dataset, to find its heaps
H5AD_BYTES = 40_000  # an h5ad's groups, attributes and headers, whatever its size (measured)
OBS_BYTES_PER_CELL = 120  # a matrix file's obs on disk: label, barcode, codes (~110 measured)
HEADER_ROUNDS = 20  # round trips of opening a file's headers, when they are not read


class _RoundCounter(CountingStore):
    """Counts bytes and requests, and the round trips: a ranged read on the calling thread
    is one, a parallel batch of them one."""

    rounds = 0

    def read_range(self, key: str, start: int, stop: int) -> bytes:
        self.rounds += 1
        return super().read_range(key, start, stop)

    def read_ranges(self, key: str, ranges, max_workers: int, each=None) -> list:
        self.rounds += 1
        return super().read_ranges(key, ranges, max_workers, each)


@dataclass(frozen=True)
class Fetch:
    """Bytes and requests of some reads, and their round trips one after another."""

    nbytes: int = 0
    requests: int = 0
    rounds: int = 0

    def __add__(self, other: Fetch) -> Fetch:
        return Fetch(self.nbytes + other.nbytes, self.requests + other.requests,
                     self.rounds + other.rounds)  # fmt: skip

    def seconds(self, link: Link, concurrency: int) -> float:
        """Each round one latency; the bytes over one connection, or ``concurrency`` of
        them within a round (``Link.seconds`` for the requests' own cost)."""
        if not self.requests:
            return 0.0
        per_round = max(1.0, self.requests / max(1, self.rounds))
        spread = min(concurrency, per_round)
        transfer = max(self.nbytes / (link.connection_bps * spread), self.nbytes / link.total_bps)
        return self.rounds * link.latency_s + transfer + self.requests * link.request_cpu_s


@dataclass(frozen=True)
class MatrixCost:
    """One needed matrix: what the plan read of it, what stream mode pays to open it and
    for its rows, and what a download fetches."""

    matrix: str
    key: str  # the file's relative path (bucket key, and its place in the cache)
    cells: int  # selected
    file_rows: int
    file_bytes: int
    cached: bool
    planning: Fetch  # what the plan read (from the cache when cached: no network)
    opening: Fetch  # stream's: headers, chunk index, indptr, obs and var
    rows: RowsPlan  # stream's, for the selected rows
    selected_bytes: int  # the selected rows' values and indices: the subset's X
    table_bytes: int  # the file's bytes beside X (obs, var, their strings, headers)
    from_headers: bool = True  # False: estimated from the manifest alone (``manifest_cost``)

    @property
    def subset_bytes(self) -> int:
        """The subset file: the selected rows, their share of the file's obs (with var and
        headers), and an h5ad's own headers."""
        share = self.cells / max(1, self.file_rows)
        obs = int(self.table_bytes * share)
        return self.selected_bytes + 8 * (self.cells + 1) + obs + H5AD_BYTES

    def choice(self, link: Link, abc: dict) -> Choice:
        """Auto's choice after opening (as the subset job makes it)."""
        return choose_rows(
            link, self.rows, self.file_bytes,
            concurrency=abc["stream"]["max_concurrency"], download=abc["download"],
        )  # fmt: skip

    def modes(self, link: Link, abc: dict, remote: bool) -> dict[str, tuple[str, int, float]]:
        """Per transfer mode: (how the job gets the file, bytes fetched, seconds on the link:
        what the job waits for the bucket, its local work aside)."""
        choice = self.choice(link, abc)
        opening_s = self.opening.seconds(link, abc["stream"]["max_concurrency"])
        rows_s = choice.stream_s  # the rows' transfer and decoding (as auto weighs them)
        parts = max(1, -(-self.file_bytes // (abc["download"]["part_size_mb"] * 2**20)))
        # a HEAD for the size, then the parts
        whole_s = link.latency_s + link.seconds(
            parts, self.file_bytes, abc["download"]["max_concurrency"]
        )
        stream = ("stream", self.opening.nbytes + self.rows.nbytes, opening_s + rows_s)
        download = ("cache", 0, 0.0) if self.cached else ("download", self.file_bytes, whole_s)
        if reads_the_cache({**abc, "transfer": "auto"}, self.cached):  # as the job decides
            auto = download
        elif not remote or choice.transfer == "stream":  # a local mirror: always streamed
            auto = stream
        else:  # it opens the file to plan, then downloads it
            auto = ("download", self.opening.nbytes + self.file_bytes, opening_s + whole_s)
        return {"download": download, "stream": stream, "auto": auto}


def matrix_cost(store, key: str, size: int, matrix: str, cells: int, *, cached: bool,
                merge_gap: int, concurrency: int) -> MatrixCost:  # fmt: skip
    """Read ``key``'s headers from ``store`` and estimate the rest (see the module)."""
    counter = _RoundCounter(store)
    file = RangeFile(counter, key, size, max_workers=concurrency)
    with h5py.File(file, "r") as h5:
        group = h5["X"]
        check_csr_group(group)
        n_rows = int(group.attrs["shape"][0])
        layouts = [dataset_layout(group["data"]), dataset_layout(group["indices"])]
        indptr = group["indptr"]
        compact = indptr.id.get_create_plist().get_layout() == h5py.h5d.COMPACT
        indptr_layout = None if compact else dataset_layout(indptr)
        tables = table_datasets(h5)
        where = [stored_ranges(dataset) for dataset in tables]
        header = Fetch(counter.stats.bytes, counter.stats.requests, counter.rounds)
        table_ranges = [r for ranges, _ in where for r in ranges]
        table = Fetch(*file.prefetch_cost(table_ranges), 1)
        strings = [ranges for d, (ranges, plain) in zip(tables, where, strict=True)
                   if plain and ranges and is_vlen_strings(d)]  # fmt: skip
        heaps = Fetch(*file.prefetch_cost(_heap_spans(file, strings), table_ranges), 1)
        planning = Fetch(counter.stats.bytes, counter.stats.requests, counter.rounds)
    size_request = Fetch(0, 0, 1)  # the job asks the file's size first (a HEAD)
    opening = size_request + header + _whole(indptr_layout, n_rows + 1, merge_gap) + table + heaps
    rows, selected_bytes = _mean_rows(layouts, n_rows, cells, merge_gap)
    return MatrixCost(
        matrix, key, cells, n_rows, size, cached, planning, opening, rows, selected_bytes,
        table_bytes=max(0, size - sum(_stored(x) for x in (*layouts, indptr_layout) if x)),
    )


def manifest_cost(key: str, size: int, matrix: str, cells: int, *, file_cells: int,
                  merge_gap: int) -> MatrixCost:  # fmt: skip
    """A matrix's cost without reading it: its rows ``file_cells`` (the cell table's count),
    an obs of ``OBS_BYTES_PER_CELL`` a cell, the rest X as float32 values and int32 indices
    stored plainly, rows of the mean size spread at random (``HOW_MANIFEST``)."""
    n_rows = max(file_cells, cells, 1)
    table = min(size // 2, n_rows * OBS_BYTES_PER_CELL + H5AD_BYTES)
    nnz = max(0, size - table - 8 * (n_rows + 1)) // 8
    layouts = [ContiguousLayout("data", np.float32, nnz, table),
               ContiguousLayout("indices", np.int32, nnz, table + 4 * nnz)]  # fmt: skip
    rows, selected_bytes = _mean_rows(layouts, n_rows, cells, merge_gap)
    opened = table + 8 * (n_rows + 1)
    opening = Fetch(opened, HEADER_ROUNDS + -(-opened // 2**20), HEADER_ROUNDS + 2)
    return MatrixCost(matrix, key, cells, n_rows, size, False, Fetch(), opening, rows,
                      selected_bytes, table_bytes=table, from_headers=False)  # fmt: skip


def _mean_rows(layouts, n_rows: int, cells: int, merge_gap: int) -> tuple[RowsPlan, int]:
    """Stream's plan for ``cells`` rows spread at random over the file's ``n_rows``, every
    row of the mean size, and the bytes of their values and indices."""
    nnz = layouts[0].length
    per_nnz = layouts[0].dtype.itemsize + layouts[1].dtype.itemsize
    rows = _random_rows(n_rows, min(cells, n_rows))
    mean_indptr = np.round(np.arange(n_rows + 1) * (nnz / max(1, n_rows))).astype(np.int64)
    selected = int(mean_indptr[rows + 1].sum() - mean_indptr[rows].sum()) * per_nnz
    return plan_rows(layouts, mean_indptr, rows, merge_gap), selected


def _stored(layout) -> int:
    if isinstance(layout, ChunkedLayout):
        return int(layout.sizes.sum())
    if isinstance(layout, ContiguousLayout):
        return layout.length * layout.dtype.itemsize
    return 0


def _heap_spans(file: RangeFile, strings: list) -> list[tuple[int, int]]:
    """Where stream mode will look for the heaps of obs/var strings: from the first
    collection a dataset's strings point to up to its last one plus ``HEAP_GUESS`` (as
    ``heap_ranges`` guesses them). Only a dataset's first and last ``ENDS`` references are
    read; its collections are taken to lie between them, as h5py writes them."""
    spans = []
    for ranges in strings:
        start, stop = ranges[0][0], ranges[-1][1]
        edge = min(stop - start, ENDS * VLEN_REF.itemsize)
        refs = file.read_at(start, start + edge) + file.read_at(stop - edge, stop)
        found = [a for a, b in heap_ranges(refs, file.size)]
        if found:
            spans.append((min(found), min(file.size, max(found) + HEAP_GUESS)))
    return spans


def _whole(layout, length: int, merge_gap: int) -> Fetch:
    """Reading a whole dataset as stream mode does (one parallel batch)."""
    if layout is None:
        return Fetch()
    plan = plan_elements([layout], np.array([0]), np.array([length]), merge_gap)[0]
    requests = plan.requests
    return Fetch(int((requests[:, 1] - requests[:, 0]).sum()), len(requests), 1)


def _random_rows(n_rows: int, n: int) -> np.ndarray:
    return np.sort(np.random.default_rng(SEED).choice(n_rows, n, replace=False))
