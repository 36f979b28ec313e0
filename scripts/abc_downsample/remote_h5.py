"""Stream mode: read selected rows of a remote h5ad's CSR matrix by byte ranges.

h5py is used only for what is small: the superblock, object headers, ``obs``, ``var`` and
``X/indptr``, through :class:`RangeFile` (a read-only file object over ranged GETs with a
block cache). The rows themselves never go through h5py: :class:`DatasetLayout` turns
element ranges of ``X/data`` and ``X/indices`` into byte ranges straight from the HDF5
layout (contiguous: one offset; chunked: the chunk index), and :class:`RemoteCsrSource`
fetches them in parallel, merged when close, and decodes chunks (deflate, shuffle).
"""

import io
import logging
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import h5py
import numpy as np

from .byte_ranges import FetchPlan, as_ranges, chunk_segments, chunks_touched, plan_requests
from .csr_rows import DEFAULT_MAX_NNZ, check_csr_group
from .errors import AbcError
from .subset import SubsetStats, labels_for_matrix, subset_matrix

log = logging.getLogger(__name__)

MIB = 1 << 20
METADATA_BLOCK = 64 * 1024  # RangeFile block: a B-tree node or object header and more
READ_AHEAD = 64  # most blocks a sequential run of misses fetches at once (4 MiB)
METADATA_CACHE = 512 * MIB  # most RangeFile keeps; obs of the largest file is ~30 MB
MAX_REQUEST = 8 * MIB  # merged requests are capped so one big run still goes out in parallel

_DEFLATE, _SHUFFLE, _FLETCHER32 = h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, 3
_DECODABLE = {_DEFLATE: "deflate", _SHUFFLE: "shuffle", _FLETCHER32: "fletcher32"}


# -- what was fetched ----------------------------------------------------------------------


@dataclass
class FetchStats:
    """Bytes and requests a stream job sent, for the per-job log line."""

    requests: int = 0
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, ranges: Sequence[tuple[int, int]]) -> None:
        with self._lock:
            self.requests += len(ranges)
            self.bytes += sum(stop - start for start, stop in ranges)


class CountingStore:
    """A store wrapper that counts the ranged reads sent through it."""

    def __init__(self, store, stats: FetchStats | None = None):
        self.store = store
        self.stats = stats or FetchStats()
        self.description = getattr(store, "description", "store")

    def size(self, key: str) -> int:
        return self.store.size(key)

    def read_range(self, key: str, start: int, stop: int) -> bytes:
        self.stats.add([(start, stop)])
        return self.store.read_range(key, start, stop)

    def read_ranges(self, key: str, ranges, max_workers: int) -> list[bytes]:
        ranges = [(int(a), int(b)) for a, b in ranges]
        self.stats.add(ranges)
        return self.store.read_ranges(key, ranges, max_workers=max_workers)


# -- a file object for h5py ---------------------------------------------------------------


class RangeFile(io.RawIOBase):
    """Read-only, seekable file over a store key: aligned blocks, fetched in parallel, cached.

    h5py's file-object driver issues many small reads: headers and B-tree nodes scattered
    over the file (a chunk index interleaves with the chunks), and long sequential walks
    (obs strings in global heaps). Small blocks keep the scattered reads cheap; a miss
    right after the previous one doubles the read-ahead (up to ``READ_AHEAD`` blocks), so
    a sequential walk costs a few large requests.
    """

    def __init__(
        self,
        store,
        key: str,
        size: int,
        *,
        block: int = METADATA_BLOCK,
        max_workers: int = 16,
        cache_bytes: int = METADATA_CACHE,
    ):
        super().__init__()
        self.store, self.key, self.size = store, key, size
        self.block, self.max_workers = block, max_workers
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._max_blocks = max(2 * READ_AHEAD, cache_bytes // block)
        self._n_blocks = -(-size // block)
        self._pos = 0
        self._ahead, self._next_miss = 1, -1

    def __repr__(self) -> str:
        # h5py names a file object's file by its repr: keep the key, as a download would
        return self.key

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        stop = min(self.size, self._pos + len(view))
        if stop <= self._pos:
            return 0
        data = self.read_at(self._pos, stop)
        view[: len(data)] = data
        self._pos = stop
        return len(data)

    def read_at(self, start: int, stop: int) -> bytes:
        first, last = start // self.block, (stop - 1) // self.block
        self._load(range(first, last + 1))
        blocks = b"".join(self._cache[i] for i in range(first, last + 1))
        offset = first * self.block
        return blocks[start - offset : stop - offset]

    def _load(self, ids: range) -> None:
        missing = [i for i in ids if i not in self._cache]
        if missing:
            sequential = missing[0] == self._next_miss
            self._ahead = min(2 * self._ahead, READ_AHEAD) if sequential else 1
            end = min(self._n_blocks, max(missing[-1] + 1, missing[0] + self._ahead))
            ahead = range(missing[-1] + 1, end)
            missing += [i for i in ahead if i not in self._cache]
            self._next_miss = missing[-1] + 1
            self._fetch(missing)
        for i in ids:
            self._cache.move_to_end(i)
        while len(self._cache) > max(self._max_blocks, len(ids)):
            self._cache.popitem(last=False)

    def _fetch(self, blocks: list[int]) -> None:
        """Fetch blocks, adjacent ones in one request (at most ``READ_AHEAD`` blocks each)."""
        runs: list[list[int]] = []
        for i in blocks:
            if runs and i == runs[-1][-1] + 1 and len(runs[-1]) < READ_AHEAD:
                runs[-1].append(i)
            else:
                runs.append([i])
        ranges = [(run[0] * self.block, min(self.size, (run[-1] + 1) * self.block)) for run in runs]
        fetched = self.store.read_ranges(self.key, ranges, self.max_workers)
        for run, data in zip(runs, fetched, strict=True):
            for n, i in enumerate(run):
                self._cache[i] = data[n * self.block : (n + 1) * self.block]


# -- where a dataset's elements are --------------------------------------------------------


class DatasetLayout:
    """Maps element ranges of a 1-D dataset to byte ranges to GET, and fetched bytes back
    to the elements, concatenated in range order."""

    def __init__(self, name: str, dtype: np.dtype, length: int):
        self.name, self.dtype, self.length = name, np.dtype(dtype), length

    def plan(self, starts: np.ndarray, stops: np.ndarray, merge_gap: int):
        """An object with ``.requests``, an (m, 2) array of byte ranges to GET."""
        raise NotImplementedError

    def assemble(self, plan, blobs: list[bytes], starts, stops) -> np.ndarray:
        raise NotImplementedError


class ContiguousLayout(DatasetLayout):
    """Elements stored back to back from ``offset``: element i is at offset + i * itemsize."""

    def __init__(self, name, dtype, length, offset: int):
        super().__init__(name, dtype, length)
        self.offset = offset

    def byte_ranges(self, starts, stops) -> tuple[np.ndarray, np.ndarray]:
        size = self.dtype.itemsize
        return self.offset + starts * size, self.offset + stops * size

    def plan(self, starts, stops, merge_gap: int) -> FetchPlan:
        return plan_requests(*self.byte_ranges(starts, stops), merge_gap, MAX_REQUEST)

    def assemble(self, plan: FetchPlan, blobs, starts, stops) -> np.ndarray:
        return plan.gather(blobs, *self.byte_ranges(starts, stops)).view(self.dtype)


@dataclass(frozen=True)
class ChunkPlan:
    ids: np.ndarray  # sorted ids of the chunks the ranges touch
    fetch: FetchPlan  # the GETs for those of them that are stored

    @property
    def requests(self) -> np.ndarray:
        return self.fetch.requests


class ChunkedLayout(DatasetLayout):
    """Fixed-size chunks, each stored (maybe filtered) at its own offset."""

    def __init__(
        self,
        name,
        dtype,
        length,
        chunk_len: int,
        filters: list[int],
        offsets: np.ndarray,
        sizes: np.ndarray,
        masks: np.ndarray,
        fill,
    ):
        super().__init__(name, dtype, length)
        self.chunk_len, self.filters = chunk_len, filters
        self.offsets, self.sizes, self.masks = offsets, sizes, masks
        self.fill = fill

    @property
    def chunk_bytes(self) -> int:
        return self.chunk_len * self.dtype.itemsize

    def plan(self, starts, stops, merge_gap: int) -> ChunkPlan:
        ids = chunks_touched(starts, stops, self.chunk_len)
        stored = ids[self.sizes[ids] > 0]  # never-written chunks hold the fill value
        begin = self.offsets[stored]
        return ChunkPlan(
            ids, plan_requests(begin, begin + self.sizes[stored], merge_gap, MAX_REQUEST)
        )

    def assemble(self, plan: ChunkPlan, blobs, starts, stops) -> np.ndarray:
        """Decode one chunk at a time and copy its segments out: memory is the result
        plus one decoded chunk, not every chunk the ranges touch."""
        out = np.empty(int(np.maximum(stops - starts, 0).sum()), dtype=self.dtype)
        chunk, lo, hi, dest = (a.tolist() for a in chunk_segments(starts, stops, self.chunk_len))
        current, values = -1, None
        for c, a, b, d in zip(chunk, lo, hi, dest, strict=True):
            if c != current:
                current, values = c, self._chunk(c, plan.fetch, blobs).view(self.dtype)
            base = c * self.chunk_len
            out[d : d + b - a] = values[a - base : b - base]
        return out

    def _chunk(self, chunk: int, fetch: FetchPlan, blobs: list) -> np.ndarray:
        size = int(self.sizes[chunk])
        if size == 0:
            return np.full(self.chunk_len, self.fill, dtype=self.dtype).view(np.uint8)
        start = int(self.offsets[chunk])
        raw = fetch.piece(blobs, start, start + size)
        data = decode_chunk(raw, self.filters, int(self.masks[chunk]), self.dtype.itemsize)
        if len(data) != self.chunk_bytes:
            raise AbcError(
                f"chunk {chunk} of {self.name} decodes to {len(data)} bytes, not "
                f"{self.chunk_bytes}: the remote file is damaged; use abc.transfer: download"
            )
        return np.frombuffer(data, dtype=np.uint8)


def decode_chunk(raw: bytes, filters: list[int], mask: int, itemsize: int) -> bytes:
    """Undo an HDF5 filter pipeline, last filter first; bit i of ``mask`` skips filter i."""
    for i in reversed(range(len(filters))):
        if mask & (1 << i):
            continue
        code = filters[i]
        if code == _DEFLATE:
            raw = zlib.decompress(raw)
        elif code == _SHUFFLE:
            raw = unshuffle(raw, itemsize)
        elif code == _FLETCHER32:
            raw = raw[:-4]  # the checksum trails the data
    return raw


def unshuffle(raw: bytes, itemsize: int) -> bytes:
    """Inverse of HDF5's byte shuffle: byte planes back to interleaved elements."""
    n = len(raw) // itemsize
    if itemsize == 1 or n == 0:
        return raw
    body = np.frombuffer(raw, dtype=np.uint8, count=n * itemsize)
    return body.reshape(itemsize, n).T.tobytes() + raw[n * itemsize :]


def dataset_layout(dset: h5py.Dataset) -> DatasetLayout:
    """The byte layout of a 1-D dataset, read from its HDF5 headers and chunk index."""
    if dset.ndim != 1:
        raise AbcError(f"{dset.name} is not 1-D: not a CSR matrix; use abc.transfer: download")
    plist = dset.id.get_create_plist()
    kind = plist.get_layout()
    if kind == h5py.h5d.CONTIGUOUS:
        offset = dset.id.get_offset()
        return ContiguousLayout(dset.name, dset.dtype, dset.shape[0], offset or 0)
    if kind == h5py.h5d.CHUNKED:
        return _chunked_layout(dset, plist)
    raise AbcError(
        f"{dset.name} has an HDF5 layout stream mode cannot read (compact or virtual): "
        "use abc.transfer: download for this file"
    )


def _filters(dset: h5py.Dataset, plist) -> list[int]:
    codes = []
    for i in range(plist.get_nfilters()):
        code, _flags, _values, name = plist.get_filter(i)
        if code not in _DECODABLE:
            label = name.decode(errors="replace") if isinstance(name, bytes) else name
            raise AbcError(
                f"{dset.name} is compressed with HDF5 filter '{label}' ({code}), which stream "
                "mode cannot decode: use abc.transfer: download for this file"
            )
        codes.append(code)
    return codes


def _chunked_layout(dset: h5py.Dataset, plist) -> ChunkedLayout:
    filters = _filters(dset, plist)
    chunk_len = dset.chunks[0]
    n_chunks = -(-dset.shape[0] // chunk_len)
    offsets = np.zeros(n_chunks, dtype=np.int64)
    sizes = np.zeros(n_chunks, dtype=np.int64)
    masks = np.zeros(n_chunks, dtype=np.int64)

    def record(info) -> None:
        chunk = info.chunk_offset[0] // chunk_len
        offsets[chunk], sizes[chunk], masks[chunk] = info.byte_offset, info.size, info.filter_mask

    try:
        dset.id.chunk_iter(record)
    except (AttributeError, NotImplementedError):  # HDF5 < 1.14: one call per chunk
        for i in range(dset.id.get_num_chunks()):
            record(dset.id.get_chunk_info(i))
    fill = dset.fillvalue if dset.fillvalue is not None else 0
    return ChunkedLayout(
        dset.name, dset.dtype, dset.shape[0], chunk_len, filters, offsets, sizes, masks, fill
    )


def read_elements(
    layouts: Sequence[DatasetLayout],
    starts,
    stops,
    store,
    key: str,
    merge_gap: int,
    max_workers: int,
) -> list[np.ndarray]:
    """Elements ``[starts, stops)`` of each dataset, concatenated in range order.

    The requests of all datasets go out in one parallel batch.
    """
    starts, stops = as_ranges(starts, stops)
    plans = [layout.plan(starts, stops, merge_gap) for layout in layouts]
    flat = [tuple(r) for plan in plans for r in plan.requests.tolist()]
    blobs = store.read_ranges(key, flat, max_workers=max_workers) if flat else []
    results, at = [], 0
    for layout, plan in zip(layouts, plans, strict=True):
        mine = blobs[at : at + len(plan.requests)]
        at += len(plan.requests)
        results.append(layout.assemble(plan, mine, starts, stops))
    return results


# -- the CsrSource ------------------------------------------------------------------------


class RemoteCsrSource:
    """A ``csr_rows.CsrSource`` over ``X`` of a remote h5ad, read by byte ranges.

    ``h5`` is the remote file opened by h5py (for ``obs``/``var``); ``stats`` counts every
    byte and request sent. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        store,
        key: str,
        *,
        max_concurrency: int = 32,
        merge_gap: int = 64 * 1024,
        size: int | None = None,
    ):
        self.key, self.max_concurrency, self.merge_gap = key, max_concurrency, merge_gap
        self.stats = FetchStats()
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
        self._open_matrix(self.h5["X"])

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
                f"{self.n_rows} rows, {data.length} values, indptr ends at {nnz}): "
                "the remote file is damaged; use abc.transfer: download"
            )

    def _read_whole(self, dset: h5py.Dataset) -> np.ndarray:
        """A whole dataset by parallel ranged reads (h5py would read chunks one by one)."""
        if dset.id.get_create_plist().get_layout() == h5py.h5d.COMPACT:
            return dset[...]  # stored inside the object header, already fetched
        layout = dataset_layout(dset)
        return self._read([layout], np.array([0]), np.array([layout.length]))[0]

    def _read(self, layouts, starts, stops) -> list[np.ndarray]:
        return read_elements(
            layouts, starts, stops, self.store, self.key, self.merge_gap, self.max_concurrency
        )

    def read_runs(self, runs) -> tuple[np.ndarray, np.ndarray]:
        """``data`` and ``indices`` of the row runs ``[a, b)``, concatenated in order."""
        runs = np.asarray(runs, dtype=np.int64).reshape(-1, 2)
        starts, stops = self.indptr[runs[:, 0]], self.indptr[runs[:, 1]]
        data, indices = self._read(self.layouts, starts, stops)
        return data, indices

    def summary(self) -> str:
        """One line for the job log: what was fetched, against the file size."""
        share = 100 * self.stats.bytes / self.size if self.size else 0.0
        return (
            f"stream {self.key}: fetched {self.stats.bytes / 1e6:,.1f} MB in "
            f"{self.stats.requests:,} requests from a {self.size / 1e6:,.1f} MB file "
            f"({share:.1f}%)"
        )

    def close(self) -> None:
        self.h5.close()
        self.file.close()

    def __enter__(self) -> "RemoteCsrSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- the stream-mode subset job -------------------------------------------------------------


def subset_remote(
    store,
    key: str,
    cells_csv,
    out_path,
    matrix: str,
    *,
    max_concurrency: int = 32,
    merge_gap_kb: int = 64,
    max_nnz: int = DEFAULT_MAX_NNZ,
) -> SubsetStats:
    """Stream mode's ``subset_local_file``: the cells of ``matrix`` from the remote ``key``.

    Only the manifest-listed object is read, by byte ranges; nothing is written but
    ``out_path``. Logs one line with bytes, requests and the file size.
    """
    labels = labels_for_matrix(cells_csv, matrix)
    with RemoteCsrSource(
        store, key, max_concurrency=max_concurrency, merge_gap=merge_gap_kb * 1024
    ) as source:
        try:
            stats = subset_matrix(
                source.h5, labels, out_path, matrix=matrix, source=source, max_nnz=max_nnz
            )
        except KeyError as err:
            raise AbcError(
                f"'{key}' lacks {err}: it is not an h5ad expression matrix; check the manifest"
            ) from None
        stats.bytes_read = source.stats.bytes
        log.info(source.summary())
    return stats


def subset_from_config(abc: dict, key: str, cells_csv, out_path, matrix: str) -> SubsetStats:
    """``subset_remote`` with the workflow's ``abc`` config (the rule script's stream branch)."""
    from .storage import open_store

    stream = abc.get("stream", {})
    workers = int(stream.get("max_concurrency", 32))
    store = open_store(
        abc["bucket"],
        abc.get("endpoint_url"),
        retries=int(abc.get("download", {}).get("retries", 5)),
        max_pool=workers,
    )
    return subset_remote(
        store,
        key,
        cells_csv,
        out_path,
        matrix,
        max_concurrency=workers,
        merge_gap_kb=int(stream.get("merge_gap_kb", 64)),
    )
