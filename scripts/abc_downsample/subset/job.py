"""One subset job, whatever ``abc.transfer`` says: from the verified cached matrix
(download), by byte ranges (stream), or per file a copy in the cache, else the cheaper of
the two (auto). The whole orchestration of a subset job is here; ``local`` subsets an open
file, ``stream`` reads a remote one.

Imports stay light (h5py, numpy and the standard library): every subset job imports this
module; the S3 client (urllib3) only when a job reads the bucket.
"""

import logging
import os
import time
from pathlib import Path

from abc_downsample.cache.download import use_cached
from abc_downsample.cache.progress import Progress
from abc_downsample.cache.verify import forget, is_trusted
from abc_downsample.errors import AbcError
from abc_downsample.h5ad.csr import DEFAULT_MAX_NNZ
from abc_downsample.h5ad.tables import read_obs_labels
from abc_downsample.release.manifest import FileEntry
from abc_downsample.stream.plan import Link, choose_rows, reads_the_cache
from abc_downsample.stream.source import RemoteCsrSource, open_remote
from abc_downsample.subset.local import (
    SubsetStats,
    labels_for_matrix,
    rows_for_labels,
    subset_local_file,
    subset_matrix,
)

log = logging.getLogger(__name__)


def subset_matrix_file(
    abc: dict, entry: FileEntry, cells_csv, out_path, matrix: str, downloaded: bool = False
) -> SubsetStats:
    """The sampled cells of ``entry``'s matrix to ``out_path``, from the verified cached
    file (downloaded into the cache first if need be) or by byte ranges, as ``abc.transfer``
    says. ``downloaded``: a download job of this project fetched it (download_on_host)."""
    started = time.monotonic()
    cache_dir = abc["cache_dir"]
    # any copy of the manifest's size counts (ours, another project's, abc_atlas_access's):
    # it is verified before use, a corrupt one fetched again
    in_cache = is_trusted(cache_dir, entry, "size")
    downloading = []  # seconds of getting the file into the cache, when that was done

    def fetch_cached() -> Path:
        waits = []  # the download's wait for the bucket (its client, made only then, aside)
        path = use_cached(entry, abc, log, waits)
        downloading.append(sum(waits))
        return path

    if reads_the_cache(abc, in_cache):
        stats = subset_local_file(fetch_cached(), cells_csv, out_path, matrix)
        fetched = not in_cache
        stats.transfer = "download" if fetched else "cache"
    else:
        stats = subset_from_config(
            abc, entry.relative_path, cells_csv, out_path, matrix, fetch_cached=fetch_cached
        )
        fetched = bool(downloading)
        stats.transfer = "download" if fetched else "stream"
    if fetched:
        stats.waited += sum(downloading)
    # keep_matrices false: what this project fetched is deleted after use; a file that was
    # in the shared cache before (another project's, another tool's) is left alone
    if (fetched or downloaded) and not abc["keep_matrices"]:
        forget(cache_dir, entry)
    stats.seconds = time.monotonic() - started
    return stats


def _selected_rows(source: RemoteCsrSource, labels):
    return rows_for_labels(read_obs_labels(source.h5), labels, os.path.basename(source.key))


def _stream_subset(
    source: RemoteCsrSource, labels, rows, planned: int, out_path, matrix: str, max_nnz: int
):
    """``rows`` of ``source`` streamed (``planned``: the bytes stream's plan of them fetches)."""
    # the rows' bytes as they arrive: in the log and on the terminal every few seconds
    source.progress = Progress(f"stream {matrix}", planned, log, terminal=True)
    try:
        stats = subset_matrix(
            source.h5, labels, out_path, matrix=matrix, source=source, max_nnz=max_nnz,
            rows=rows,
        )  # fmt: skip
    except KeyError as err:
        raise AbcError(
            f"'{source.key}' lacks {err}: it is not an h5ad expression matrix; check the manifest"
        ) from None
    stats.bytes_read, stats.row_bytes = source.stats.bytes, source.row_bytes
    stats.waited = source.stats.waited
    log.info(source.summary())
    return stats


def subset_remote(
    store,
    key: str,
    cells_csv,
    out_path,
    matrix: str,
    *,
    max_concurrency: int,
    merge_gap_kb: int,
    max_nnz: int = DEFAULT_MAX_NNZ,
) -> SubsetStats:
    """Stream mode's ``subset_local_file``: the cells of ``matrix`` from the remote ``key``.

    Only the manifest-listed object is read, by byte ranges; nothing is written but
    ``out_path``. Logs one line with bytes, requests and the file size.
    """
    labels = labels_for_matrix(cells_csv, matrix)
    with open_remote(store, key, max_concurrency, merge_gap_kb) as source:
        rows = _selected_rows(source, labels)
        planned = source.plan_rows(rows).nbytes
        return _stream_subset(source, labels, rows, planned, out_path, matrix, max_nnz)


def subset_auto(
    store,
    key: str,
    cells_csv,
    out_path,
    matrix: str,
    fetch_cached,
    *,
    link: Link,
    download: dict,
    max_concurrency: int,
    merge_gap_kb: int,
    max_nnz: int = DEFAULT_MAX_NNZ,
) -> SubsetStats:
    """Plan both ways from the remote file's layout, ``indptr`` and obs, then stream the
    rows or call ``fetch_cached()`` (the verified cached file's path) and subset that."""
    labels = labels_for_matrix(cells_csv, matrix)
    with open_remote(store, key, max_concurrency, merge_gap_kb) as source:
        rows = _selected_rows(source, labels)
        plan = source.plan_rows(rows)
        # already-read bytes are sunk
        choice = choose_rows(link, plan, source.size, concurrency=source.max_concurrency,
                             download=download, spent=source.stats.bytes)  # fmt: skip
        log.info(choice.line(key))
        if choice.transfer == "stream":
            return _stream_subset(source, labels, rows, plan.nbytes, out_path, matrix, max_nnz)
        planning = source.stats.waited
    stats = subset_local_file(fetch_cached(), cells_csv, out_path, matrix, max_nnz=max_nnz)
    stats.waited = planning  # the download's own wait is added by the caller
    return stats


def subset_from_config(
    abc: dict, key: str, cells_csv, out_path, matrix: str, fetch_cached=None
) -> SubsetStats:
    """The rule script's entry for ``abc.transfer`` stream and auto (``fetch_cached``: a
    callable returning the verified cached file's path, used when auto picks download)."""
    from abc_downsample.cache.store import store_from_config

    stream = abc["stream"]
    store = store_from_config(abc, "stream")
    tuning = {"max_concurrency": stream["max_concurrency"], "merge_gap_kb": stream["merge_gap_kb"]}
    remote = getattr(store, "endpoint", None) is not None
    if abc["transfer"] == "auto" and fetch_cached is not None and remote:
        link = Link.from_config(abc["link"])
        download = abc["download"]
        return subset_auto(
            store, key, cells_csv, out_path, matrix, fetch_cached, link=link,
            download=download, **tuning,
        )  # fmt: skip
    return subset_remote(store, key, cells_csv, out_path, matrix, **tuning)
