"""One subset job, whatever ``abc.transfer`` says: from the verified cached matrix
(download), by byte ranges (stream), or the cheaper of the two per file (auto)."""

import logging
from pathlib import Path

from .cache import forget, is_trusted
from .download import use_cached
from .manifest import FileEntry
from .subset import SubsetStats, subset_local_file


def subset_matrix_file(
    abc: dict, entry: FileEntry, cells_csv, out_path, matrix: str, downloaded: bool = False
) -> SubsetStats:
    """The sampled cells of ``entry``'s matrix to ``out_path``, from the verified cached
    file (downloaded into the cache first if need be) or by byte ranges, as ``abc.transfer``
    says. ``downloaded``: a download job of this project fetched it (download_on_host)."""
    log = logging.getLogger("abc_downsample")
    cache_dir = abc["cache_dir"]
    # with keep_matrices false, a file this project fetched is deleted after use; one that
    # was already verified in the shared cache (another project's) is left alone
    trusted = is_trusted(cache_dir, entry, abc["verify"])
    ours = downloaded or not trusted
    if _reads_the_cache(abc, trusted):
        # a cached file (ours, abc_atlas_access's, a mirror's) is verified, never trusted blind
        stats = subset_local_file(use_cached(entry, abc, log), cells_csv, out_path, matrix)
    else:
        from .remote_h5 import subset_from_config  # stream mode's modules: only when used

        fetched = []

        def fetch_cached() -> Path:
            fetched.append(True)
            return use_cached(entry, abc, log)

        stats = subset_from_config(
            abc, entry.relative_path, cells_csv, out_path, matrix, fetch_cached=fetch_cached
        )
        ours = ours and bool(fetched)
    if ours and not abc["keep_matrices"]:
        forget(cache_dir, entry)
    return stats


def _reads_the_cache(abc: dict, trusted: bool) -> bool:
    """Download mode; auto where the cache already holds the file verified (``trusted``:
    no transfer at all) or where compute nodes have no internet (download_on_host)."""
    transfer = abc["transfer"]
    if transfer != "auto":
        return transfer == "download"
    return trusted or abc["download_on_host"]
