"""Where a 1-D HDF5 dataset's elements are in the file, and how to get them back.

:func:`dataset_layout` reads a dataset's layout from its headers and chunk index (h5py,
through the remote file object); the layout then maps element ranges to byte ranges to GET
and fetched bytes back to elements, with no h5py call:

- contiguous: element i is at ``offset + i * itemsize``;
- chunked without filters: each chunk is a plain slice of the array at its own offset, so
  exactly the asked-for elements' bytes are fetched, as for contiguous;
- chunked with filters (deflate, lzf, shuffle, fletcher32): whole chunks, decoded here
  (zlib and liblzf in C). A deflate stream carries its own checksum (zlib checks it) and
  fletcher32 is verified.
"""

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import h5py
import numpy as np

from abc_downsample.errors import AbcError
from abc_downsample.stream.byte_ranges import (
    FetchPlan,
    as_ranges,
    chunk_segments,
    chunks_touched,
    plan_requests,
)
from abc_downsample.stream.lzf import FILTER_LZF, lzf_decompress
from abc_downsample.units import MiB

MAX_REQUEST = 8 * MiB  # merged requests are capped so one big run still goes out in parallel
DECODE_THREADS = min(4, os.cpu_count() or 1)
DECODE_GROUP_BYTES = 64 * MiB  # decoded chunks held at once

_DEFLATE, _SHUFFLE, _FLETCHER32 = h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, 3
_DECODABLE = frozenset({_DEFLATE, _SHUFFLE, _FLETCHER32, FILTER_LZF})
# names of the filters in auto's model (abc.link.decode_mbps)
FILTER_NAMES = {_DEFLATE: "gzip", FILTER_LZF: "lzf", _SHUFFLE: "shuffle", _FLETCHER32: "fletcher32"}
DAMAGED = "the remote file or its transfer is damaged; rerun, or use abc.transfer: download"


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

    def reader(self, plan, starts, stops) -> "Assembler":
        """What takes the plan's requests as they arrive and gives the elements."""
        return Assembler(self, plan, starts, stops)


@dataclass(frozen=True)
class SlicePlan:
    """Requests for byte slices of the file, and the slices in the order they are wanted."""

    fetch: FetchPlan
    byte_starts: np.ndarray
    byte_stops: np.ndarray

    @property
    def requests(self) -> np.ndarray:
        return self.fetch.requests


class ContiguousLayout(DatasetLayout):
    """Elements stored back to back from ``offset``: element i is at offset + i * itemsize."""

    def __init__(self, name, dtype, length, offset: int):
        super().__init__(name, dtype, length)
        self.offset = offset

    def plan(self, starts, stops, merge_gap: int) -> SlicePlan:
        size = self.dtype.itemsize
        begin, end = self.offset + starts * size, self.offset + stops * size
        return SlicePlan(plan_requests(begin, end, merge_gap, MAX_REQUEST), begin, end)

    def assemble(self, plan: SlicePlan, blobs, starts, stops) -> np.ndarray:
        return plan.fetch.gather(blobs, plan.byte_starts, plan.byte_stops).view(self.dtype)


@dataclass(frozen=True)
class ChunkPlan:
    ids: np.ndarray  # sorted ids of the chunks the ranges touch
    fetch: FetchPlan  # the GETs for those of them that are stored

    @property
    def requests(self) -> np.ndarray:
        return self.fetch.requests


class ChunkedLayout(DatasetLayout):
    """Fixed-size chunks, each stored (maybe filtered) at its own offset."""

    def __init__(self, name, dtype, length, chunk_len, filters, offsets, sizes, masks, fill):
        super().__init__(name, dtype, length)
        self.chunk_len, self.filters = chunk_len, filters
        self.offsets, self.sizes, self.masks = offsets, sizes, masks
        self.fill = fill
        # chunks stored as plain slices: no filter, or every filter skipped for all chunks
        all_skipped = (1 << len(filters)) - 1
        self.unfiltered = not filters or bool(np.all((masks & all_skipped) == all_skipped))
        stored = sizes[sizes > 0]
        if self.unfiltered and np.any(stored != self.chunk_bytes):
            raise AbcError(f"the chunk index of {name} lists chunks of wrong sizes: {DAMAGED}")

    @property
    def chunk_bytes(self) -> int:
        return self.chunk_len * self.dtype.itemsize

    def plan(self, starts, stops, merge_gap: int) -> ChunkPlan | SlicePlan:
        if self.unfiltered and np.all(self.sizes[chunks_touched(starts, stops, self.chunk_len)]):
            return self._slice_plan(starts, stops, merge_gap)
        ids = chunks_touched(starts, stops, self.chunk_len)
        stored = ids[self.sizes[ids] > 0]  # never-written chunks hold the fill value
        begin = self.offsets[stored]
        return ChunkPlan(
            ids, plan_requests(begin, begin + self.sizes[stored], merge_gap, MAX_REQUEST)
        )

    def _slice_plan(self, starts, stops, merge_gap: int) -> SlicePlan:
        """Exact byte ranges: each range cut at chunk borders, in the order asked for."""
        chunk, lo, hi, dest = chunk_segments(starts, stops, self.chunk_len)
        order = np.argsort(dest, kind="stable")
        chunk, lo, hi = chunk[order], lo[order], hi[order]
        size = self.dtype.itemsize
        begin = self.offsets[chunk] + (lo - chunk * self.chunk_len) * size
        end = begin + (hi - lo) * size
        return SlicePlan(plan_requests(begin, end, merge_gap, MAX_REQUEST), begin, end)

    def assemble(self, plan, blobs, starts, stops) -> np.ndarray:
        if isinstance(plan, SlicePlan):
            return plan.fetch.gather(blobs, plan.byte_starts, plan.byte_stops).view(self.dtype)
        return self._assemble_chunks(plan, blobs, starts, stops)

    def reader(self, plan, starts, stops) -> "Assembler":
        if isinstance(plan, ChunkPlan) and self._whole_in_requests(plan):
            return ChunkDecoder(self, plan, starts, stops)
        return Assembler(self, plan, starts, stops)

    def _whole_in_requests(self, plan: ChunkPlan) -> bool:
        """True if each stored chunk lies inside one request (a chunk longer than a
        request is cut in pieces, joined only once all have arrived)."""
        stored, owner = self.request_of_chunks(plan)
        ends = plan.fetch.requests[owner, 1]
        return bool(np.all(self.offsets[stored] + self.sizes[stored] <= ends))

    def request_of_chunks(self, plan: ChunkPlan) -> tuple[np.ndarray, np.ndarray]:
        """The plan's stored chunks, and the request each starts in."""
        stored = plan.ids[self.sizes[plan.ids] > 0]
        starts = plan.fetch.requests[:, 0]
        return stored, np.searchsorted(starts, self.offsets[stored], side="right") - 1

    def _assemble_chunks(self, plan: ChunkPlan, blobs, starts, stops) -> np.ndarray:
        """Decode the touched chunks (in parallel: zlib releases the GIL) and copy their
        segments out, a group of chunks at a time: memory is the result plus one group."""
        out = np.empty(int(np.maximum(stops - starts, 0).sum()), dtype=self.dtype)
        chunk, lo, hi, dest = (a.tolist() for a in chunk_segments(starts, stops, self.chunk_len))
        ids = plan.ids.tolist()
        per_group = max(1, DECODE_GROUP_BYTES // max(1, self.chunk_bytes))
        at = 0  # next segment
        with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
            for first in range(0, len(ids), per_group):
                group = ids[first : first + per_group]
                # pure CPU on bytes already fetched: nothing here can wait on the network
                values = list(pool.map(lambda c: self._chunk(c, plan.fetch, blobs), group))
                decoded = dict(zip(group, values, strict=True))
                while at < len(chunk) and chunk[at] in decoded:
                    c, a, b, d = chunk[at], lo[at], hi[at], dest[at]
                    base = c * self.chunk_len
                    out[d : d + b - a] = decoded[c].view(self.dtype)[a - base : b - base]
                    at += 1
        return out

    def _chunk(self, chunk: int, fetch: FetchPlan, blobs: list) -> np.ndarray:
        size = int(self.sizes[chunk])
        if size == 0:
            return self.fill_chunk()
        start = int(self.offsets[chunk])
        return self.decode(chunk, fetch.piece(blobs, start, start + size).tobytes())

    def fill_chunk(self) -> np.ndarray:
        """A never-written chunk: the fill value, as bytes."""
        return np.full(self.chunk_len, self.fill, dtype=self.dtype).view(np.uint8)

    def decode(self, chunk: int, raw: bytes) -> np.ndarray:
        """Stored chunk ``chunk``'s bytes decoded and checked, as uint8."""
        try:
            mask, itemsize = int(self.masks[chunk]), self.dtype.itemsize
            data = decode_chunk(raw, self.filters, mask, itemsize, self.chunk_bytes)
        except Exception as err:  # zlib.error (bad stream or adler32), a bad fletcher32
            raise AbcError(
                f"chunk {chunk} of {self.name} does not decode ({err}): {DAMAGED}"
            ) from None
        if len(data) != self.chunk_bytes:
            raise AbcError(
                f"chunk {chunk} of {self.name} decodes to {len(data)} bytes, not "
                f"{self.chunk_bytes}: {DAMAGED}"
            )
        return np.frombuffer(data, dtype=np.uint8)


class Assembler:
    """Turns one layout's fetched requests into its elements: keeps each request's bytes
    as they arrive (:meth:`take`), assembles them once all are in (:meth:`result`)."""

    def __init__(self, layout: DatasetLayout, plan, starts, stops):
        self.layout, self.plan, self.starts, self.stops = layout, plan, starts, stops

    def take(self, i: int, blob: bytes) -> bytes | None:
        """Request ``i``'s bytes, on the fetching worker thread; what to keep of them."""
        return blob

    def result(self, kept: list) -> np.ndarray:
        return self.layout.assemble(self.plan, kept, self.starts, self.stops)


class ChunkDecoder(Assembler):
    """Decodes filtered chunks as their request arrives, on the fetching worker (zlib
    releases the GIL), and copies their segments straight into the result: decoding
    overlaps the fetch, and memory is the result plus the requests in flight."""

    def __init__(self, layout: ChunkedLayout, plan: ChunkPlan, starts, stops):
        super().__init__(layout, plan, starts, stops)
        self.out = np.empty(int(np.maximum(stops - starts, 0).sum()), dtype=layout.dtype)
        chunk, lo, hi, dest = chunk_segments(starts, stops, layout.chunk_len)
        base = chunk * layout.chunk_len
        self.segments = np.stack([lo - base, hi - base, dest], axis=1).tolist()
        ids = plan.ids  # sorted, as the segments are: chunk c's are first[c]:last[c]
        self.first = dict(zip(ids.tolist(), np.searchsorted(chunk, ids).tolist(), strict=True))
        last = np.searchsorted(chunk, ids, side="right")
        self.last = dict(zip(ids.tolist(), last.tolist(), strict=True))
        stored, owner = layout.request_of_chunks(plan)
        requests = plan.fetch.requests
        # (chunk, start in its request's bytes, stored size) by request
        self.chunks_of: list[list[tuple[int, int, int]]] = [[] for _ in range(len(requests))]
        starts_in = layout.offsets[stored] - requests[owner, 0]
        for c, r, at, size in zip(
            stored.tolist(), owner.tolist(), starts_in.tolist(), layout.sizes[stored].tolist(),
            strict=True,
        ):  # fmt: skip
            self.chunks_of[r].append((c, at, size))
        self.empty = ids[layout.sizes[ids] == 0].tolist()

    def take(self, i: int, blob: bytes) -> None:
        view = memoryview(blob)
        for c, at, size in self.chunks_of[i]:
            self._place(c, self.layout.decode(c, bytes(view[at : at + size])))
        return None  # the compressed bytes are dropped here

    def result(self, kept: list) -> np.ndarray:
        for c in self.empty:
            self._place(c, self.layout.fill_chunk())
        return self.out

    def _place(self, chunk: int, decoded: np.ndarray) -> None:
        """Copy a decoded chunk's segments to their places (disjoint between chunks)."""
        values = decoded.view(self.layout.dtype)
        for a, b, d in self.segments[self.first[chunk] : self.last[chunk]]:
            self.out[d : d + b - a] = values[a:b]


def decode_chunk(raw: bytes, filters: list[int], mask: int, itemsize: int, nbytes: int) -> bytes:
    """Undo an HDF5 filter pipeline, last filter first; bit i of ``mask`` skips filter i.
    ``nbytes``: the chunk's size decoded (LZF's C decoder needs it as a bound)."""
    import zlib

    for i in reversed(range(len(filters))):
        if mask & (1 << i):
            continue
        code = filters[i]
        if code == _DEFLATE:
            raw = zlib.decompress(raw)  # checks the stream's adler32
        elif code == _SHUFFLE:
            raw = unshuffle(raw, itemsize)
        elif code == FILTER_LZF:
            raw = lzf_decompress(raw, nbytes)
        elif code == _FLETCHER32:
            raw = check_fletcher32(raw)
    return raw


def fletcher32(data: bytes) -> int:
    """HDF5's Fletcher-32 of ``data``: 16-bit big-endian words, sums modulo 65535."""
    body = np.frombuffer(data, dtype=np.uint8)
    if len(body) % 2:
        body = np.r_[body, np.uint8(0)]
    words = body.reshape(-1, 2).astype(np.int64)
    words = (words[:, 0] << 8) | words[:, 1]
    n = len(words)
    sum1 = int(words.sum()) % 65535
    weights = np.arange(n, 0, -1, dtype=np.int64)  # word i is added to sum2 (n - i) times
    sum2 = int(((words * weights) % 65535).sum()) % 65535
    return (sum2 << 16) | sum1


def check_fletcher32(raw: bytes) -> bytes:
    """The data before the trailing checksum, after checking it (either byte order, as
    HDF5 accepts both)."""
    if len(raw) < 4:
        raise ValueError("chunk shorter than its fletcher32 checksum")
    data, stored = raw[:-4], raw[-4:]
    mine = fletcher32(data)
    for order in ("little", "big"):
        value = int.from_bytes(stored, order)
        if (value >> 16) % 65535 == mine >> 16 and (value & 0xFFFF) % 65535 == mine & 0xFFFF:
            return data
    raise ValueError("fletcher32 checksum mismatch")


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

    each_chunk(dset, record)
    fill = dset.fillvalue if dset.fillvalue is not None else 0
    return ChunkedLayout(
        dset.name, dset.dtype, dset.shape[0], chunk_len, filters, offsets, sizes, masks, fill
    )


# -- what h5py reads of a table, so it can be fetched ahead in parallel ----------------------

VLEN_REF = np.dtype([("length", "<u4"), ("collection", "<u8"), ("index", "<u4")])
HEAP_GUESS = 256 * 1024  # bytes fetched for a global heap collection, at most


def stored_ranges(dset: h5py.Dataset) -> tuple[list[tuple[int, int]], bool]:
    """The byte ranges a dataset's elements are stored in, and whether they are plain
    (contiguous: the elements as they are; else chunks, maybe filtered). Headers only."""
    kind = dset.id.get_create_plist().get_layout()
    if kind == h5py.h5d.CONTIGUOUS:
        offset, size = dset.id.get_offset(), dset.id.get_storage_size()
        return ([(offset, offset + size)] if offset is not None and size else []), True
    if kind != h5py.h5d.CHUNKED:
        return [], False  # compact: inside the object header
    ranges: list[tuple[int, int]] = []
    each_chunk(dset, lambda info: ranges.append((info.byte_offset, info.byte_offset + info.size)))
    return ranges, False


def each_chunk(dset: h5py.Dataset, record) -> None:
    """Call ``record`` with the stored-chunk info of each chunk of ``dset``."""
    try:
        dset.id.chunk_iter(record)
    except (AttributeError, NotImplementedError):  # HDF5 < 1.14: one call per chunk
        for i in range(dset.id.get_num_chunks()):
            record(dset.id.get_chunk_info(i))


def is_vlen_strings(dset: h5py.Dataset) -> bool:
    info = h5py.check_string_dtype(dset.dtype)
    return info is not None and info.length is None


def heap_ranges(refs: bytes, file_size: int) -> list[tuple[int, int]]:
    """Guessed byte ranges of the global heap collections that variable-length elements
    (``refs``: their stored references) point to: from each collection to the next, at
    most ``HEAP_GUESS``. A guess is only a prefetch; h5py reads what is missed."""
    elements = np.frombuffer(refs, VLEN_REF, len(refs) // VLEN_REF.itemsize)
    found = np.unique(elements["collection"][elements["length"] > 0])
    found = found[(found > 0) & (found < file_size)].astype(np.int64)
    ends = np.minimum(np.r_[found[1:], file_size], found + HEAP_GUESS)
    return list(zip(found.tolist(), np.minimum(ends, file_size).tolist(), strict=True))


def plan_elements(layouts: Sequence[DatasetLayout], starts, stops, merge_gap: int) -> list:
    """One fetch plan per layout for elements ``[starts, stops)`` (no I/O)."""
    starts, stops = as_ranges(starts, stops)
    return [layout.plan(starts, stops, merge_gap) for layout in layouts]


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

    The requests of all datasets go out in one parallel batch. Call it outside any h5py
    call: it waits on worker threads.
    """
    starts, stops = as_ranges(starts, stops)
    plans = plan_elements(layouts, starts, stops, merge_gap)
    readers = [lay.reader(plan, starts, stops) for lay, plan in zip(layouts, plans, strict=True)]
    flat, owners = [], []
    for reader, plan in zip(readers, plans, strict=True):
        for i, request in enumerate(plan.requests.tolist()):
            flat.append(tuple(request))
            owners.append((reader, i))

    def arrived(n: int, blob: bytes):  # on a worker thread: no h5py object touched
        reader, i = owners[n]
        return reader.take(i, blob)

    kept = store.read_ranges(key, flat, max_workers=max_workers, each=arrived) if flat else []
    results, at = [], 0
    for reader, plan in zip(readers, plans, strict=True):
        results.append(reader.result(kept[at : at + len(plan.requests)]))
        at += len(plan.requests)
    return results
