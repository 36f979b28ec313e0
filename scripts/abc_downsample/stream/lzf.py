"""LZF decompression (h5py's filter 32000), for stream mode, which decodes chunks itself.

The C decoder of liblzf (the library h5py's own LZF filter is built from), through the
``python-lzf`` package, where it is installed; else the pure-Python decoder below, which is
also the tests' oracle. The format: a control byte below 32 starts a run of ctrl + 1
literal bytes; otherwise its top 3 bits (7: plus the next byte) give a back-reference's
length - 2 and its low 5 bits with the next byte the distance - 1.
"""

try:
    import lzf as _liblzf
except ImportError:  # an install without the C extension: the Python decoder stands in
    _liblzf = None

FILTER_LZF = 32000


def lzf_decompress(data: bytes, size: int) -> bytes:
    """The bytes ``data`` encodes, at most ``size`` of them (the C decoder needs that
    bound); ValueError if it is not a valid LZF stream."""
    if _liblzf is None:
        return lzf_decompress_python(data)
    out = _liblzf.decompress(data, size)  # ValueError on a damaged stream
    if out is None:
        raise ValueError(f"lzf chunk decodes to more than {size} bytes")
    return out


def lzf_decompress_python(data: bytes) -> bytes:
    """The pure-Python decoder: a token loop (~100x slower than liblzf)."""
    out = bytearray()
    pos, end = 0, len(data)
    while pos < end:
        ctrl = data[pos]
        pos += 1
        if ctrl < 32:  # literal run
            run = ctrl + 1
            if pos + run > end:
                raise ValueError("lzf literal run past the end of the chunk")
            out += data[pos : pos + run]
            pos += run
            continue
        length = ctrl >> 5
        if length == 7:
            length += data[pos]
            pos += 1
        if pos >= end:
            raise ValueError("lzf back-reference past the end of the chunk")
        start = len(out) - ((ctrl & 0x1F) << 8) - data[pos] - 1
        pos += 1
        if start < 0:
            raise ValueError("lzf back-reference before the start of the chunk")
        length += 2
        if start + length <= len(out):  # no overlap: one slice
            out += out[start : start + length]
        else:  # overlapping: the copy repeats the last bytes
            for i in range(length):
                out.append(out[start + i])
    return bytes(out)
