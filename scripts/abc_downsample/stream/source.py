"""Stream mode: read selected rows of a remote h5ad's CSR matrix by byte ranges.

h5py reads only what is small (superblock, object headers, chunk index, ``obs``, ``var``)
through :class:`range_file.RangeFile`, which fetches on the calling thread: h5py holds its
global lock while it reads, so nothing may wait on another thread then. The rows never go
through h5py: the layouts of ``X/data`` and ``X/indices`` (:mod:`h5_layout`) turn them into
byte ranges, fetched in parallel outside any h5py call.

Integrity: over https TLS protects the bytes; deflate streams and fletcher32 carry
checksums. Every row is checked for what holds in any valid file (indptr monotone, indices
in range). Over plain http the rows are also checked for what holds in real data (indices
sorted within a row in most rows; values finite, and whole non-negative numbers in a
``-raw`` counts file), so a flipped byte fails the job instead of changing a value.
"""

import logging
from dataclasses import dataclass, field

import h5py
import numpy as np

from abc_downsample.errors import AbcError
from abc_downsample.h5ad.csr import check_csr_group, row_runs
from abc_downsample.stream.layout import (
    DAMAGED,
    FILTER_NAMES,
    ChunkPlan,
    dataset_layout,
    heap_ranges,
    is_vlen_strings,
    plan_elements,
    read_elements,
    stored_ranges,
)
from abc_downsample.stream.range_file import CountingStore, FetchStats, RangeFile
from abc_downsample.units import MB

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowsPlan:
    """Stream mode's work for some rows: GETs, bytes fetched, compressed chunks decoded
    (their size once decoded; 0 when no chunk is filtered), and the bytes each filter of
    their pipelines puts out."""

    requests: int
    nbytes: int
    decoded_bytes: int
    decoded_by_filter: dict = field(default_factory=dict)


class RemoteCsrSource:
    """A ``csr_rows.CsrSource`` over ``X`` of a remote h5ad, read by byte ranges.

    ``h5`` is the remote file opened by h5py (for ``obs``/``var``); ``stats`` counts every
    byte and request sent. ``check_values`` adds the plain-http checks of the rows;
    ``counts`` says the values are counts. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        store,
        key: str,
        *,
        max_concurrency: int,
        merge_gap: int,
        size: int | None = None,
        check_values: bool = False,
        counts: bool = False,
    ):
        self.key, self.max_concurrency, self.merge_gap = key, max_concurrency, merge_gap
        self.check_values, self.counts = check_values, counts
        self.stats = FetchStats()
        self.row_bytes = 0  # of stats.bytes: the rows' (the rest: headers, obs, var, indptr)
        self.progress = None  # a cache.progress.Progress of the rows' bytes, if set
        self.store = CountingStore(store, self.stats)
        self.size = self.store.size(key) if size is None else size
        self.file = RangeFile(self.store, key, self.size, max_workers=max_concurrency)
        try:
            self.h5 = h5py.File(self.file, "r")
        except OSError as err:
            raise AbcError(
                f"'{key}' in {self.store.description} is not a readable HDF5 file ({err}): "
                "check the manifest entry, or use abc.transfer: download"
            ) from None
        if "X" not in self.h5:
            raise AbcError(f"'{key}' has no X matrix: it is not an ABC Atlas expression file")
        try:
            self._open_matrix(self.h5["X"])
        except (OSError, KeyError, RuntimeError, ValueError) as err:  # h5py on a bad index
            raise AbcError(f"could not read X of '{key}' ({err}): {DAMAGED}") from None
        self._prefetch_tables()

    def _open_matrix(self, group) -> None:
        check_csr_group(group)
        self.n_rows, self.n_cols = (int(n) for n in group.attrs["shape"])
        data, indices = dataset_layout(group["data"]), dataset_layout(group["indices"])
        self.layouts = [data, indices]
        self.dtype, self.indices_dtype = data.dtype, indices.dtype
        self.indptr = self._read_whole(group["indptr"]).astype(np.int64, copy=False)
        nnz = int(self.indptr[-1]) if len(self.indptr) else -1
        if len(self.indptr) != self.n_rows + 1 or not data.length == indices.length == nnz:
            raise AbcError(
                f"X of '{self.key}' is inconsistent (indptr {len(self.indptr)} entries for "
                f"{self.n_rows} rows, {data.length} values, indptr ends at {nnz}): {DAMAGED}"
            )
        if self.indptr[0] != 0 or np.any(np.diff(self.indptr) < 0):
            raise AbcError(f"X/indptr of '{self.key}' is not a row index: {DAMAGED}")

    def _prefetch_tables(self) -> None:
        """Fetch obs and var into the block cache in two parallel batches (their datasets,
        then the heaps their strings are in): h5py would read them miss by miss, one round
        trip each. A hint only: an unreadable table is reported when it is read."""
        try:
            datasets = table_datasets(self.h5)
            where = [stored_ranges(dset) for dset in datasets]
        except (OSError, KeyError, RuntimeError, ValueError):  # h5py on a damaged header
            return
        self.file.prefetch([r for ranges, _ in where for r in ranges])
        heaps = []
        for dset, (ranges, plain) in zip(datasets, where, strict=True):
            if plain and ranges and is_vlen_strings(dset):
                start, stop = ranges[0]
                heaps += heap_ranges(self.file.read_at(start, stop), self.size)  # cached
        self.file.prefetch(heaps)

    def _read_whole(self, dset: h5py.Dataset) -> np.ndarray:
        """A whole dataset by parallel ranged reads (h5py would read chunks one by one)."""
        if dset.id.get_create_plist().get_layout() == h5py.h5d.COMPACT:
            return dset[...]  # stored inside the object header, already fetched
        layout = dataset_layout(dset)
        return self._read([layout], np.array([0]), np.array([layout.length]))[0]

    def _read(self, layouts, starts, stops, store=None) -> list[np.ndarray]:
        """Elements ``[starts, stops)`` of each dataset of ``layouts``, fetched through
        ``store`` (default: the source's own)."""
        store = self.store if store is None else store
        return read_elements(
            layouts, starts, stops, store, self.key, self.merge_gap, self.max_concurrency
        )

    def read_runs(self, runs) -> tuple[np.ndarray, np.ndarray]:
        """``data`` and ``indices`` of the row runs ``[a, b)``, concatenated in order."""
        runs = np.asarray(runs, dtype=np.int64).reshape(-1, 2)
        starts, stops = self.indptr[runs[:, 0]], self.indptr[runs[:, 1]]
        before = self.stats.bytes  # nothing else fetches meanwhile: h5py is not called
        store = self.store if self.progress is None else _Arrivals(self.store, self.progress)
        data, indices = self._read(self.layouts, starts, stops, store)
        self.row_bytes += self.stats.bytes - before
        self._check_rows(runs, data, indices)
        return data, indices

    # -- what can be checked ------------------------------------------------------------

    def _check_rows(self, runs: np.ndarray, data: np.ndarray, indices: np.ndarray) -> None:
        if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= self.n_cols):
            self._damaged(f"a column index outside [0, {self.n_cols})")
        if not self.check_values or not len(indices):
            return
        if not np.all(np.isfinite(data)):
            self._damaged("a value that is not finite")
        if self.counts and (np.any(data < 0) or not np.array_equal(data, np.round(data))):
            self._damaged("a count that is not a whole non-negative number")
        self._check_sorted(runs, indices)

    def _check_sorted(self, runs: np.ndarray, indices: np.ndarray) -> None:
        """Real files store each row's column indices sorted. A flipped byte breaks that in
        its row; a file stored unsorted has nearly every row unsorted, so only a minority of
        unsorted rows means damage."""
        lengths = np.concatenate([np.diff(self.indptr[a : b + 1]) for a, b in runs.tolist()])
        ends = np.cumsum(lengths)
        step_down = np.diff(indices.astype(np.int64)) <= 0
        inner = ends[:-1][(ends[:-1] > 0) & (ends[:-1] < len(indices))] - 1
        step_down[inner] = False  # a new row may start lower
        if not step_down.any():
            return
        bad_rows = np.unique(np.searchsorted(ends, np.flatnonzero(step_down), side="right"))
        if 2 * len(bad_rows) < int((lengths >= 2).sum()):
            self._damaged(f"{len(bad_rows)} rows whose column indices are out of order")

    def _damaged(self, what: str) -> None:
        raise AbcError(f"rows read from '{self.key}' hold {what}: {DAMAGED}")

    # -- planning -----------------------------------------------------------------------

    def plan_rows(self, rows: np.ndarray) -> RowsPlan:
        """What stream mode would fetch and decode for ``rows`` (no I/O)."""
        return plan_rows(self.layouts, self.indptr, rows, self.merge_gap)

    def selected_bytes(self, rows: np.ndarray) -> int:
        """Bytes of ``data`` and ``indices`` the rows hold."""
        nnz = int((self.indptr[rows + 1] - self.indptr[rows]).sum())
        return nnz * (self.dtype.itemsize + self.indices_dtype.itemsize)

    def summary(self) -> str:
        """One line for the job log: what was fetched, the rows apart from the rest (read
        in blocks apart from the rows: on a small file it can outweigh them, even add up
        to more than the file)."""
        other = self.stats.bytes - self.row_bytes
        return (
            f"stream {self.key}: fetched {self.stats.bytes / MB:,.1f} MB "
            f"({self.stats.bytes:,} bytes) in {self.stats.requests:,} requests: "
            f"{self.row_bytes / MB:,.1f} MB of the selected rows, {other / MB:,.1f} MB of "
            f"headers, obs, var and indptr (a {self.size / MB:,.1f} MB file)"
        )

    def close(self) -> None:
        self.h5.close()
        self.file.close()

    def __enter__(self) -> "RemoteCsrSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Arrivals:
    """A store whose ranged reads count their bytes into ``progress`` as they arrive (on
    the worker threads, so a long read reports while it runs)."""

    def __init__(self, store, progress):
        self.store, self.progress = store, progress

    def read_ranges(self, key: str, ranges, max_workers: int, each=None) -> list:
        def arrived(i: int, blob: bytes):
            self.progress.add(len(blob))
            self.progress.maybe_log()
            return each(i, blob) if each is not None else blob

        return self.store.read_ranges(key, ranges, max_workers=max_workers, each=arrived)


def plan_rows(layouts, indptr: np.ndarray, rows: np.ndarray, merge_gap: int) -> RowsPlan:
    """What stream mode fetches and decodes for ``rows`` of a matrix whose ``data`` and
    ``indices`` are laid out as ``layouts`` (no I/O)."""
    runs = np.asarray(row_runs(np.sort(rows)), dtype=np.int64).reshape(-1, 2)
    starts, stops = indptr[runs[:, 0]], indptr[runs[:, 1]]
    plans = plan_elements(layouts, starts, stops, merge_gap)
    decoded_bytes, by_filter = 0, {}
    for layout, p in zip(layouts, plans, strict=True):
        if isinstance(p, ChunkPlan):  # filtered chunks, decoded whole by every filter
            decoded = int((layout.sizes[p.ids] > 0).sum()) * layout.chunk_bytes
            decoded_bytes += decoded
            for name in (FILTER_NAMES[code] for code in layout.filters):
                by_filter[name] = by_filter.get(name, 0) + decoded
    return RowsPlan(
        requests=sum(len(p.requests) for p in plans),
        nbytes=sum(int((p.requests[:, 1] - p.requests[:, 0]).sum()) for p in plans),
        decoded_bytes=decoded_bytes,
        decoded_by_filter=by_filter,
    )


def table_datasets(h5: h5py.File) -> list[h5py.Dataset]:
    """The 1-D datasets of obs and var: the obs index first, then var's, then obs's."""
    found: list[h5py.Dataset] = []

    def keep(_name: str, node) -> None:
        if isinstance(node, h5py.Dataset) and node.ndim == 1:
            found.append(node)

    for name in ("obs", "var"):
        group = h5.get(name)
        if isinstance(group, h5py.Group):
            group.visititems(keep)
    index = f"/obs/{h5['obs'].attrs.get('_index', '')}" if "obs" in h5 else ""
    return sorted(found, key=lambda d: (d.name != index, not d.name.startswith("/var/")))


# -- the subset job -------------------------------------------------------------------------


def plain_http(store) -> bool:
    """True if the store's bytes cross a network without TLS."""
    return str(getattr(store, "endpoint", "") or "").startswith("http://")


def open_remote(store, key: str, max_concurrency: int, merge_gap_kb: int) -> RemoteCsrSource:
    """A `RemoteCsrSource` with the checks the transport calls for (one log line if http)."""
    insecure = plain_http(store)
    if insecure:
        log.info(
            "plain http to %s: no TLS protects the bytes of %s; every row is checked "
            "instead (sorted indices in range, finite values, whole counts)",
            store.endpoint,
            key,
        )
    return RemoteCsrSource(
        store,
        key,
        max_concurrency=max_concurrency,
        merge_gap=merge_gap_kb * 1024,
        check_values=insecure,
        counts=key.endswith("-raw.h5ad"),
    )


