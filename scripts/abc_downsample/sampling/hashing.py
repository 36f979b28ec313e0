"""Cell labels hashed to 64 bits, keyed by the seed: the draws' priorities depend on a
label alone, never on its row or on threads (see ``drawing``)."""

import numpy as np
import pyarrow as pa

from abc_downsample.metadata.tables import as_arrow_strings

PIECE = 1 << 18  # labels hashed at once: ~8 MB of text, ~64 MB of work arrays
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_LENGTH_KEY = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijection of uint64 that scrambles every bit."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _hash_chunk(chunk: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string: sum of (byte + 1) * key[position], plus the length."""
    offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(chunk.buffers()[1], dtype=offset_type)
    offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1].astype(np.int64)
    data = np.frombuffer(chunk.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
    lengths = np.diff(offsets)
    starts = offsets[:-1] - offsets[0]
    position = np.arange(len(data)) - np.repeat(starts, lengths)
    keys = _mix(np.arange(1, int(lengths.max(initial=0)) + 1, dtype=np.uint64))  # per position
    terms = (data.astype(np.uint64) + np.uint64(1)) * keys[position]
    sums = np.add.reduceat(terms, starts) if len(data) else np.zeros(len(chunk), np.uint64)
    return sums + lengths.astype(np.uint64) * _LENGTH_KEY


def hash_labels(labels, seed: int = 0) -> np.ndarray:
    """A 64-bit hash of each label, keyed by ``seed``: the same for a label wherever it is.
    Hashed ``PIECE`` labels at a time into one array: the work arrays hold a number per
    byte of label (8.6 M labels, 200 MB of text, would take GBs at once)."""
    labels = as_arrow_strings(labels)
    hashes = np.empty(len(labels), dtype=np.uint64)
    key, at = _mix(np.array([seed], dtype=np.uint64)), 0
    for chunk in labels.chunks:
        for start in range(0, len(chunk), PIECE):
            piece = _hash_chunk(chunk.slice(start, PIECE))
            hashes[at : at + len(piece)] = _mix(piece ^ key)
            at += len(piece)
    return hashes
