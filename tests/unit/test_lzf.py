"""The pure-Python LZF decoder against h5py's own lzf filter, chunk by chunk."""

import h5py
import numpy as np
import pytest

from abc_downsample.stream import lzf
from abc_downsample.stream.layout import decode_chunk
from abc_downsample.stream.lzf import FILTER_LZF, lzf_decompress


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
def test_lzf_chunks_decode_to_what_h5py_reads(tmp_path, dtype, monkeypatch):
    monkeypatch.setattr(lzf, "_liblzf", None)  # the pure-Python decoder
    rng = np.random.default_rng(0)
    values = np.concatenate([
        rng.geometric(0.3, 20_000), np.zeros(5_000, int), np.arange(20_000) // 7,
    ]).astype(dtype)  # fmt: skip
    path = tmp_path / "lzf.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=values, chunks=(4096,), compression="lzf")
    chunk_bytes = 4096 * values.itemsize  # a chunk decoded
    with h5py.File(path, "r") as f:
        dset = f["x"]
        decoded = []
        for i in range(dset.id.get_num_chunks()):
            info = dset.id.get_chunk_info(i)
            mask, raw = dset.id.read_direct_chunk(info.chunk_offset)
            decoded.append(decode_chunk(raw, [FILTER_LZF], mask, values.itemsize, chunk_bytes))
    got = np.frombuffer(b"".join(decoded), dtype=dtype)[: len(values)]
    np.testing.assert_array_equal(got, values)


def test_damaged_lzf_is_a_value_error(monkeypatch):
    monkeypatch.setattr(lzf, "_liblzf", None)
    with pytest.raises(ValueError, match="lzf"):
        lzf_decompress(bytes([0xE0, 0x05]), 1000)
