"""The local cache in the ``abc_atlas_access`` layout, and checks of files already in it.

A file is stored at ``<cache_dir>/<relative_path>``, so a cache filled by that library is
reused as it is. We never write its ``_downloaded_data.json`` ledger: parallel jobs rewrite
it without a lock and corrupt it; a file's size and MD5 against the manifest are our ledger.

Cached files are never Snakemake outputs (a second project's Snakemake would delete them
before "rebuilding" them). Jobs that fetch a file write a small *receipt* in the project
instead; every reader gets the file through ``verify.ensure_cached``.
"""

import json
import os
from pathlib import Path, PurePosixPath

from abc_downsample.atomic import atomic_path
from abc_downsample.errors import AbcError
from abc_downsample.release.manifest import FileEntry

STATE_DIR = ".abc_downsample"


def cache_path(cache_dir: str | os.PathLike, relative_path: str) -> Path:
    """``<cache_dir>/<relative_path>``; refuses paths that would leave the cache."""
    rel = PurePosixPath(relative_path)
    if not relative_path or rel.is_absolute() or ".." in rel.parts:
        raise AbcError(
            f"manifest path '{relative_path}' is not a relative path inside the cache: "
            "the manifest is damaged; delete it to download it again"
        )
    return Path(cache_dir, *rel.parts)


# -- stamps: verified once, trusted after -----------------------------------------------


# -- receipts: what a project's jobs fetched ----------------------------------------------


def entry_fields(entry: FileEntry) -> dict:
    """What identifies a file's data: for receipts and the subset job's params."""
    return {"relative_path": entry.relative_path, "size": entry.size, "md5": entry.md5}


def entry_from_fields(fields: dict) -> FileEntry:
    return FileEntry("", "", "", None, fields["relative_path"], fields["size"], fields["md5"], "")


def write_receipt(path: str | os.PathLike, entry: FileEntry) -> None:
    """The project's record that ``entry`` is in the cache (a job's output, unlike the file)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(entry_fields(entry)) + "\n")


def read_receipt(path: str | os.PathLike) -> FileEntry:
    try:
        return entry_from_fields(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise AbcError(f"cache receipt {path} is unreadable ({err}): delete it and rerun") from None
