"""LZF decompression (h5py's filter 32000), pure Python: for stream mode, which decodes
chunks itself. The format: a control byte below 32 starts a run of ctrl + 1 literal bytes;
otherwise its top 3 bits (7: plus the next byte) give a back-reference's length - 2 and its
low 5 bits with the next byte the distance - 1. A chunk is ~200 KB: a token loop is fast
enough against the network time of fetching it.
"""

FILTER_LZF = 32000


def lzf_decompress(data: bytes) -> bytes:
    """The bytes ``data`` encodes; ValueError if it is not a valid LZF stream."""
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
