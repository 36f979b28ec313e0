"""Which release a run uses, and its manifest, settled once per run by the main Snakemake
process while it reads the workflow; jobs (cluster jobs parse the workflow again) read what
it wrote into the project.

Not a checkpoint rule: Snakemake skips the update checks of every job that waits on a
checkpoint whose output is missing, so a changed release ran nothing downstream.
"""

import json
from collections.abc import Callable
from pathlib import Path

from abc_downsample.atomic import write_if_changed
from abc_downsample.cache.layout import cache_path
from abc_downsample.cache.store import configured_endpoint, local_root, store_from_config
from abc_downsample.config_check import default_config
from abc_downsample.errors import AbcError
from abc_downsample.project import SHIPPED_RELEASES
from abc_downsample.release.manifest import Manifest, manifest_key, newest_release


def resolve(abc: dict, record: Path, main: bool, note: Callable[[str], None]) -> str:
    """A pinned release as it is; "latest" is the newest in the bucket, asked once per run
    (by the main process, which records it in ``record`` for the jobs)."""
    if abc["release"] != "latest":
        return abc["release"]
    if not main:
        return _recorded(record)
    try:
        release = newest_release(store_from_config(abc).list_keys("releases/"))
    except AbcError as err:
        if not record.exists():
            raise
        release = _recorded(record)
        note(f"warning: cannot list the releases ({err}); using {release}, the last one seen")
    write_if_changed(record, release + "\n")
    note(f"abc.release latest is {release}")
    return release


def _recorded(record: Path) -> str:
    try:
        return record.read_text().strip()
    except OSError:
        raise AbcError(
            f"{record} is missing: run snakemake from the submit host, which resolves "
            "abc.release: latest once per run"
        ) from None


def project_manifest(abc: dict, release: str, dest: Path, main: bool) -> Manifest:
    """The release's manifest, copied into the project at ``dest``.

    Releases never change, so a copy in the project, in the cache or shipped with the
    workflow (the public bucket's) is used as it is (also offline); a local mirror (the
    demo's synthetic bucket) is read again, as it may be rebuilt. The cache keeps it at its
    ``abc_atlas_access`` path. Jobs read ``dest``.
    """
    if not main:
        return Manifest.load(dest)
    key = manifest_key(release)
    mirror = local_root(abc["bucket"]) is not None
    found = None if mirror else _read(dest)
    if found is None:
        cached = cache_path(abc["cache_dir"], key)
        found = None if mirror else _read(cached) or _shipped(abc, key)
        found = found or _download(abc, key)
        write_if_changed(cached, found[0])
        write_if_changed(dest, found[0])
    return found[1]


def _shipped(abc: dict, key: str) -> tuple[bytes, Manifest] | None:
    """The workflow's own copy of a public release's manifest (none for other buckets or
    endpoints: a mirror may hold other files under the same release)."""
    public = default_config()["abc"]["bucket"]
    if abc["bucket"] != public or configured_endpoint(abc["endpoint_url"]) is not None:
        return None
    return _read(cache_path(SHIPPED_RELEASES, key))


def _read(path: Path) -> tuple[bytes, Manifest] | None:
    """A manifest file's bytes and contents, or None if it is absent or damaged."""
    try:
        raw = path.read_bytes()
        return raw, Manifest(json.loads(raw), str(path))
    except (OSError, ValueError, AbcError):
        return None


def _download(abc: dict, key: str) -> tuple[bytes, Manifest]:
    store = store_from_config(abc)
    try:
        raw = store.get_bytes(key)
    except AbcError as err:
        raise _explain_missing(store, key, err) from None
    try:
        return raw, Manifest(json.loads(raw), key)
    except json.JSONDecodeError as err:
        raise AbcError(f"{key} in {abc['bucket']} is not valid JSON ({err})") from None


def _explain_missing(store, key: str, err: AbcError) -> AbcError:
    """An unknown release says which releases exist; other failures pass through."""
    try:
        keys = store.list_keys("releases/")
    except AbcError:
        return err
    if key in keys:
        return err
    newest = newest_release(keys) if keys else "none found"
    return AbcError(
        f"release manifest {key} is not in the bucket: set abc.release to an existing "
        f"release (the newest is {newest}) or to latest"
    )
