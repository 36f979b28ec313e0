"""One subset job, whatever ``abc.transfer`` says: from the verified cached matrix
(download), by byte ranges (stream), or per file a copy in the cache, else the cheaper of
the two (auto)."""

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
    # any copy of the manifest's size counts (ours, another project's, abc_atlas_access's):
    # it is verified before use, a corrupt one fetched again
    in_cache = is_trusted(cache_dir, entry, "size")
    if _reads_the_cache(abc, in_cache):
        stats = subset_local_file(use_cached(entry, abc, log), cells_csv, out_path, matrix)
        fetched = not in_cache
        stats.transfer = "download" if fetched else "cache"
    else:
        from .remote_h5 import subset_from_config  # stream mode's modules: only when used

        fetches = []

        def fetch_cached() -> Path:
            fetches.append(True)
            return use_cached(entry, abc, log)

        stats = subset_from_config(
            abc, entry.relative_path, cells_csv, out_path, matrix, fetch_cached=fetch_cached
        )
        fetched = bool(fetches)
        stats.transfer = "download" if fetched else "stream"
    # keep_matrices false: what this project fetched is deleted after use; a file that was
    # in the shared cache before (another project's, another tool's) is left alone
    if (fetched or downloaded) and not abc["keep_matrices"]:
        forget(cache_dir, entry)
    return stats


def _reads_the_cache(abc: dict, in_cache: bool) -> bool:
    """Download mode; auto where the cache already holds the file (no transfer: offline
    reruns and a filled cache need no network) or compute nodes have no internet."""
    transfer = abc["transfer"]
    if transfer != "auto":
        return transfer == "download"
    return in_cache or abc["download_on_host"]
