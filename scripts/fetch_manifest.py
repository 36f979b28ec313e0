"""Rule fetch_manifest: the release manifest, from the cache if it holds it (releases never
change), else from the bucket into the cache; then the project's copy."""

import json
from pathlib import Path

from abc_downsample.atomic import atomic_path
from abc_downsample.cache import cache_path
from abc_downsample.errors import AbcError
from abc_downsample.manifest import Manifest, newest_release
from abc_downsample.rule_io import log, run
from abc_downsample.storage import store_from_config


def main():
    abc, key = snakemake.config["abc"], snakemake.params.key
    cached = cache_path(abc["cache_dir"], key)
    # a synthetic release (the demo) is made anew: its bucket, not the cache, is the truth
    raw = None if snakemake.input else _valid_cached(cached, key)
    if raw is None:
        raw = _download(abc, key)
        with atomic_path(cached) as tmp:
            tmp.write_bytes(raw)
        log.info("manifest %s downloaded into %s", key, cached)
    else:
        log.info("manifest %s taken from the cache (%s)", key, cached)
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_bytes(raw)


def _valid_cached(path: Path, key: str) -> bytes | None:
    """The cached manifest's bytes if it is one, else None (absent or damaged: refetch)."""
    try:
        raw = path.read_bytes()
        Manifest(json.loads(raw), str(path))
        return raw
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AbcError) as err:
        log.warning("the cached %s is not a valid manifest (%s): fetching it again", path, err)
        return None


def _download(abc: dict, key: str) -> bytes:
    store = store_from_config(abc)
    try:
        raw = store.get_bytes(key)
    except AbcError as err:
        raise _explain_missing(store, key, err) from None
    try:
        Manifest(json.loads(raw), key)
    except json.JSONDecodeError as err:
        raise AbcError(f"{key} in {abc['bucket']} is not valid JSON ({err})") from None
    return raw


def _explain_missing(store, key, err):
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


run(main, snakemake.log[0])
