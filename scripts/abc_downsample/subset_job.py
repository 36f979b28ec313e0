"""One subset job, whatever ``abc.transfer`` says: from the verified cached matrix
(download), by byte ranges (stream), or the cheaper of the two per file (auto)."""

import logging
from pathlib import Path

from .cache import cache_path, forget, is_trusted
from .download import use_cached
from .manifest import FileEntry
from .subset import SubsetStats, subset_local_file


def subset_matrix_file(
    abc: dict, entry: FileEntry, cells_csv, out_path, matrix: str, cached: bool
) -> SubsetStats:
    """The sampled cells of ``entry``'s matrix to ``out_path``. ``cached``: a download job
    put the file in the cache (download mode), else the remote file is read here."""
    used_cache = False

    def fetch_cached() -> Path:
        # a cached file (ours, abc_atlas_access's, a mirror's) is verified, never trusted blind
        nonlocal used_cache
        used_cache = True
        return use_cached(entry, abc, logging.getLogger("abc_downsample"))

    if cached:
        stats = subset_local_file(fetch_cached(), cells_csv, out_path, matrix)
    elif abc["transfer"] == "auto" and is_trusted(abc["cache_dir"], entry, abc["verify"]):
        # already verified in the shared cache (by any project): no transfer at all; not
        # fetched by this job, so not this job's to delete either (keep_matrices)
        path = cache_path(abc["cache_dir"], entry.relative_path)
        logging.getLogger("abc_downsample").info("auto: %s is verified in the cache", path)
        stats = subset_local_file(path, cells_csv, out_path, matrix)
    else:
        from .remote_h5 import subset_from_config  # stream mode's modules: only when used

        stats = subset_from_config(
            abc, entry.relative_path, cells_csv, out_path, matrix, fetch_cached=fetch_cached
        )
    if used_cache and not abc["keep_matrices"]:
        forget(abc["cache_dir"], entry)
    return stats
