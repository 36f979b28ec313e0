"""LZF chunks decoded by liblzf in C (python-lzf), the pure-Python decoder kept as the
oracle and the fallback (issue 25): both against h5py's own lzf filter."""

import h5py
import numpy as np
import pytest

from abc_downsample.stream import layout as h5_layout
from abc_downsample.stream import lzf


def chunks_of(path):
    """(raw chunk, filter mask) of dataset x, and its values as h5py reads them."""
    with h5py.File(path, "r") as f:
        dset = f["x"]
        raws = []
        for i in range(dset.id.get_num_chunks()):
            mask, raw = dset.id.read_direct_chunk(dset.id.get_chunk_info(i).chunk_offset)
            raws.append((raw, mask))
        return raws, dset[:], h5_layout.dataset_layout(dset)


@pytest.fixture(params=["lzf", "shuffle+lzf"])
def lzf_file(request, tmp_path):
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.geometric(0.3, 30_000), np.arange(30_000) // 5]).astype("f4")
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=values, chunks=(8192,), compression="lzf",
                         shuffle=request.param.startswith("shuffle"))  # fmt: skip
    return path


def test_the_c_decoder_is_installed():
    assert lzf._liblzf is not None, "python-lzf is a runtime requirement"


def test_c_and_python_decoders_agree_with_h5py(lzf_file):
    raws, values, layout = chunks_of(lzf_file)
    lzf_index = layout.filters.index(lzf.FILTER_LZF)
    decoded = []
    for chunk, (raw, mask) in enumerate(raws):
        assert not mask & (1 << lzf_index), "every chunk compressed"
        if layout.filters == [lzf.FILTER_LZF]:
            assert lzf.lzf_decompress(raw, layout.chunk_bytes) == lzf.lzf_decompress_python(raw)
        decoded.append(layout.decode(chunk, raw))
    got = np.concatenate(decoded).view("f4")[: len(values)]
    np.testing.assert_array_equal(got, values)


def test_stream_decoding_uses_the_c_decoder(lzf_file, monkeypatch):
    def python_decoder(data):
        raise AssertionError("the pure-Python decoder ran")

    monkeypatch.setattr(lzf, "lzf_decompress_python", python_decoder)
    raws, values, layout = chunks_of(lzf_file)
    got = np.concatenate([layout.decode(c, raw) for c, (raw, _) in enumerate(raws)])
    np.testing.assert_array_equal(got.view("f4")[: len(values)], values)


def test_without_the_c_decoder_the_python_one_decodes(lzf_file, monkeypatch):
    monkeypatch.setattr(lzf, "_liblzf", None)
    raws, values, layout = chunks_of(lzf_file)
    got = np.concatenate([layout.decode(c, raw) for c, (raw, _) in enumerate(raws)])
    np.testing.assert_array_equal(got.view("f4")[: len(values)], values)


def test_damaged_or_oversized_chunks_are_value_errors(lzf_file):
    (raw, _), *_ = chunks_of(lzf_file)[0]
    with pytest.raises(ValueError, match="compressed data|lzf"):
        lzf.lzf_decompress(bytes([0xE0, 0x05]), 1000)
    with pytest.raises(ValueError, match="more than 10 bytes"):
        lzf.lzf_decompress(raw, 10)
