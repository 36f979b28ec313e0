"""Units and the readers' buffer sizes, each defined once. Light on purpose: the Snakefile
imports it (through `resources`), and it imports nothing."""

KiB = 1024
MiB = 1024 * KiB
MB = 1_000_000  # decimal, as network rates and the manifest's sizes are quoted
GB = 1_000_000_000

SUBSET_BATCH_NNZ = 8 * MiB  # non-zeros a subset job reads at once (csr_rows)
CONCAT_BLOCK_NNZ = 4 * MiB  # non-zeros concat copies at once
STREAM_CACHE_BYTES = 512 * MiB  # stream mode's block cache for HDF5 metadata, at most


def size_text(n_bytes: float) -> str:
    """Bytes for people, at their own scale: "512 bytes", "35.2 MB", "4.1 GB"."""
    if n_bytes < 1e3:
        return f"{int(n_bytes)} bytes"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.3g} {unit}"
